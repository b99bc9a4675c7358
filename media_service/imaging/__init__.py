"""Pillow/OpenCV steps for stills. Given values only: no settings, storage or database."""
