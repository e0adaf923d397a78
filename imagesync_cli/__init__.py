"""imagesync: the command line for the imagesync portal (copy images into your registry namespaces).

Standalone: it needs only ``requests`` and talks to the portal's REST API, never to Django.
"""

__version__ = "1.0.0"
