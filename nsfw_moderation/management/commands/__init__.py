"""One module per ``manage.py`` command; ``_files`` holds what two of them share."""
