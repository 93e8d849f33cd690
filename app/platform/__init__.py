"""What the station needs from the machine it runs on: paths, logging, files, images, the doctor check.

Nothing here knows cameras or rules; every other part may use it.
"""
