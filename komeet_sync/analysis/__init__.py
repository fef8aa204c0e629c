"""What notebooks read: the loader and the investigations."""
