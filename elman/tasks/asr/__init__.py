"""Speech recognition with CTC (Graves et al. 2006): audio in, characters out."""
