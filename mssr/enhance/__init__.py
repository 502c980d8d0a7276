"""`mssr enhance`: a user's spectrum file in, the high-field estimate out in the same format."""
