#!/usr/bin/env python
"""Django's command-line utility for imagesync."""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imagesync_site.settings")
    from django.core.management import execute_from_command_line

    from imagesync_site.env import ConfigError

    try:
        execute_from_command_line(sys.argv)
    except ConfigError as exc:
        # A bad variable is the operator's to fix: say which, without a traceback.
        sys.stderr.write(f"imagesync: configuration error: {exc}\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
