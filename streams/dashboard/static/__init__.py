"""The dashboard's page, script and styles, served as files.

A package only so that an installed votescore carries them.
"""
