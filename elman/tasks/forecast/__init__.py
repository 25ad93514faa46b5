"""Time-series forecasting and anomaly detection."""
