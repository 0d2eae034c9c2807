"""Static files of the block explorer (a package only so that installs ship them)."""
