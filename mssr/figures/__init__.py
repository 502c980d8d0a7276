"""Every figure of the pipeline and of `mssr enhance`."""
