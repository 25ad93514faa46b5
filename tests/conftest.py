"""Test-wide settings: tiny ops run fastest single-threaded, and two xdist workers would
otherwise fight over the two cores with spinning OpenMP threads."""

import torch

torch.set_num_threads(1)
