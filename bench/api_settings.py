"""Settings for ``bench/api.py`` only: the production settings with the API throttle rates raised.

The rates live in ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` in ``imagesync_site.settings`` and
are not read from the environment. At 60 requests and 10 job creations a minute per token/user,
20 clients could not make the thousands of requests the percentiles need, so the bench's
gunicorn runs with this module. The throttle classes stay installed and still do their work on
every request (a Redis GET, and a SET for counted requests); only the limits are out of reach.
Never use this module outside the benchmark.
"""

from imagesync_site.settings import *
from imagesync_site.settings import REST_FRAMEWORK as _BASE

REST_FRAMEWORK = {
    **_BASE,
    "DEFAULT_THROTTLE_RATES": {
        **_BASE["DEFAULT_THROTTLE_RATES"],
        "api": "1000000/minute",
        "job_create": "1000000/minute",
    },
}
