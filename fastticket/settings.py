"""FastTicket settings, read from the environment (and a local `.env`) through django-environ.

Every variable is listed in `.env.example`, and the main ones in the README's Configuration table
(docs/api.md has the contract's). Sections, in the order one looks things up: where settings come
from and the secret key; booking and the waiting room; the database; Redis; accounts and tokens;
the API; HTTP and security; applications and middleware; time and static files; logging.
"""

import ipaddress
import os
import zoneinfo
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

# ---- Where settings come from; the secret key, debug mode and hosts ---------------------------

BASE_DIR = Path(__file__).resolve().parent.parent

# Refused below when DEBUG is off, so only a developer's machine ever signs with it.
DEV_SECRET_KEY = "django-insecure-fastticket-development-key-do-not-use-in-production"  # nosec B105

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)
# Read verbatim: django-environ would take a value starting with "$" for a reference to another
# variable, and Django's own generated keys may start with "$".
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or DEV_SECRET_KEY
if not DEBUG and SECRET_KEY == DEV_SECRET_KEY:
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off (the development key is refused)."
    )
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
# How many proxies stand in front (nginx: 1): the throttles and /metrics find the client behind them.
NUM_PROXIES = env.int("DJANGO_NUM_PROXIES", default=0)

# ---- Booking and the waiting room (API.md, Configuration) -------------------------------------

BOOKING_LOCK_WAIT = env.int("BOOKING_LOCK_WAIT", default=3)
# A held ticket lock lives this long unless its holder renews it (each batch does): how long a
# holder that died keeps the line waiting.
BOOKING_LOCK_EXPIRE = max(1, env.int("BOOKING_LOCK_EXPIRE", default=2))
# The most bookings a lock holder takes from the line into one transaction.
BOOKING_BATCH_MAX = max(1, env.int("BOOKING_BATCH_MAX", default=100))
# The waiting room (API.md): how long before the sale a queue lets users join, and the most times
# a second all places of one queue are asked about (poll_after_seconds keeps to it).
QUEUE_OPENS_MINUTES = max(0, env.int("QUEUE_OPENS_MINUTES", default=30))
QUEUE_POLL_BUDGET = max(1, env.int("QUEUE_POLL_BUDGET", default=500))

# ---- Database: the source of truth ------------------------------------------------------------

# Database: the source of truth. ATOMIC_REQUESTS stays off: booking opens its own durable
# transaction inside the Redis lock, and an outer request transaction would commit after the
# lock is released.
DATABASES = {
    "default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/fastticket"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
# Off by default: a health check costs a round trip on every request. A connection that died
# between requests fails its request with a 503 `unavailable` and is replaced on the next one.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("DATABASE_CONN_HEALTH_CHECKS", default=False)
BOOKING_LOCK_TIMEOUT_MS = env.int("BOOKING_DB_LOCK_TIMEOUT_MS", default=BOOKING_LOCK_WAIT * 1000)
DATABASE_STATEMENT_TIMEOUT_MS = env.int("DATABASE_STATEMENT_TIMEOUT_MS", default=10000)
# Every session bounds its waits: a row lock not granted within the booking wait is a 503 `busy`
# (lock_timeout), and a stuck statement a 503 `unavailable` (statement_timeout). They are session
# defaults, never a SET LOCAL in each transaction, which would cost a round trip on every booking.
DATABASE_SESSION_SETTINGS = {
    "lock_timeout": BOOKING_LOCK_TIMEOUT_MS,
    "statement_timeout": DATABASE_STATEMENT_TIMEOUT_MS,
}
# DATABASE_POOLER=transaction: DATABASE_URL is a pooler in transaction mode (PgBouncer's
# pool_mode=transaction, CloudNativePG's Pooler), where consecutive transactions of one Django
# connection run on different server sessions (docs/deployment.md, "PgBouncer"):
# - no libpq `options` at connect: PgBouncer refuses that startup parameter (1.18, Debian's), and a
#   SET would stay on whichever server session ran it. The session settings above are the role's
#   defaults in the database instead (`manage.py set_database_defaults`, run by the migrate step),
#   which every server session starts with; each process checks them once (fastticket.pooling).
# - no prepared statements: psycopg prepares a query after 5 executions, on one server session,
#   and would then run it by name on another that never saw it (PgBouncer before 1.21).
# - no server-side cursors: `.iterator()` would DECLARE a cursor that outlives its transaction.
DATABASE_POOLER = env.str("DATABASE_POOLER", default="none").strip().lower()
if DATABASE_POOLER not in {"none", "transaction"}:
    raise ImproperlyConfigured(f"DATABASE_POOLER must be none or transaction, not {DATABASE_POOLER!r}.")
_database_options = {"connect_timeout": env.int("DATABASE_CONNECT_TIMEOUT", default=2)}
if DATABASE_POOLER == "transaction":
    _database_options["prepare_threshold"] = None
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
else:
    _database_options["options"] = " ".join(f"-c {name}={value}" for name, value in DATABASE_SESSION_SETTINGS.items())
    # Parameters bound by the server and statements prepared after 5 executions (psycopg): the
    # booking path's statements are planned once per connection, not on every request (measured:
    # PostgreSQL's CPU per sold-out answer 0.17 -> 0.07 ms). Not behind a pooler, above.
    _database_options["server_side_binding"] = True
    _database_options["prepare_threshold"] = env.int("DATABASE_PREPARE_THRESHOLD", default=5)
DATABASES["default"].setdefault("OPTIONS", {}).update(_database_options)

# ---- Redis: the booking line, locks, mirrors, cache and throttles -----------------------------

# Redis: cache, throttling and booking locks. Short timeouts: Redis only speeds things up, so an
# outage must cost little time and never an error.
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
REDIS_KEY_PREFIX = env.str("REDIS_KEY_PREFIX", default="ft")
REDIS_TIMEOUT = env.float("REDIS_TIMEOUT", default=0.25)
REDIS_OUTAGE_LOG_INTERVAL = env.int("REDIS_OUTAGE_LOG_INTERVAL", default=60)
REDIS_RETRY_AFTER = env.float("REDIS_RETRY_AFTER", default=1.0)

_redis_options = {
    "SOCKET_CONNECT_TIMEOUT": REDIS_TIMEOUT,
    "SOCKET_TIMEOUT": REDIS_TIMEOUT,
    # Throttling and caching fail open while Redis is down; booking has its own handling.
    "IGNORE_EXCEPTIONS": True,
}
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": REDIS_KEY_PREFIX,
        "OPTIONS": _redis_options,
    },
    # Waiting bookings block in BLPOP, in slices, so this connection needs a socket timeout longer
    # than one slice (and no longer, so that a stalled Redis cannot stretch a booking's wait).
    "locks": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": REDIS_KEY_PREFIX,
        "OPTIONS": {
            "SOCKET_CONNECT_TIMEOUT": REDIS_TIMEOUT,
            # fastticket.redis.WAIT_SLICE: the longest BLPOP, plus the usual deadline.
            "SOCKET_TIMEOUT": 0.5 + REDIS_TIMEOUT,
            "CONNECTION_FACTORY": "fastticket.redis.LockConnectionFactory",
        },
    },
}
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = False

# ---- Accounts, passwords and tokens -----------------------------------------------------------

AUTH_USER_MODEL = "accounts.User"
# Where a login form without a safe `next` lands (Django's default, /accounts/profile/, is a 404).
LOGIN_REDIRECT_URL = "swagger-ui"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_HASHERS = env.list(
    "DJANGO_PASSWORD_HASHERS",
    default=[
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
        "django.contrib.auth.hashers.Argon2PasswordHasher",
        "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
        "django.contrib.auth.hashers.ScryptPasswordHasher",
    ],
)

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=1)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "SIGNING_KEY": SECRET_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
}
# How long an authenticated user is trusted from the per-process cache; API.md allows 60 s for a
# deactivation to reach access tokens.
AUTH_USER_CACHE_SECONDS = env.int("AUTH_USER_CACHE_SECONDS", default=30)

# ---- The API: Django REST framework, throttles, the OpenAPI document --------------------------


def _rate(name: str, default: str) -> str | None:
    """Read a DRF throttle rate; `off` disables that throttle."""
    value = env.str(name, default=default).strip()
    return None if value.lower() in {"off", "none", ""} else value


REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # JWT first, so an anonymous API call is a 401 with WWW-Authenticate, not a 403.
        "accounts.authentication.CachedJWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_PARSER_CLASSES": [
        "fastticket.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "fastticket.negotiation.JSONFirstContentNegotiation",
    "DEFAULT_PAGINATION_CLASS": "fastticket.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "fastticket.errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "fastticket.throttling.AnonRateThrottle",
        "fastticket.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": _rate("THROTTLE_ANON", "120/min"),
        "user": _rate("THROTTLE_USER", "600/min"),
        "auth": _rate("THROTTLE_AUTH", "20/min"),
        "booking": _rate("THROTTLE_BOOKING", "30/min"),
    },
    # 0: the client is REMOTE_ADDR. DRF's None would trust a client's own X-Forwarded-For, so
    # anyone could dodge the per-IP throttles by sending a new one with each request.
    "NUM_PROXIES": NUM_PROXIES,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "FastTicket API",
    "DESCRIPTION": (
        "First-come, first-served ticketing. Every error is a JSON object; see the error "
        "responses of each operation. Authenticate with `Authorization: Bearer <access token>` "
        "from `POST /api/v1/auth/login/`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "ReservationStatusEnum": "reservations.models.ReservationStatus",
        "PlaceStatusEnum": "reservations.serializers.PLACE_STATUSES",
    },
    # The API speaks JSON; the form parsers are there for the browsable API only.
    "PARSER_WHITELIST": ["fastticket.parsers.JSONParser"],
    # The session cookie is the browsable API's; clients (and Swagger's Authorize) use the bearer token.
    "AUTHENTICATION_WHITELIST": ["accounts.authentication.CachedJWTAuthentication"],
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "jwtAuth": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": (
                    "The `access` token of `POST /api/v1/auth/login/` (or `POST /api/v1/auth/refresh/`), "
                    "valid for JWT_ACCESS_MINUTES (15 by default). Paste the token alone: it is sent as "
                    "`Authorization: Bearer <token>`."
                ),
            }
        }
    },
    # No request leaves the machine: Swagger UI's online validator badge is off.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
}

# ---- HTTP: HTTPS and security headers, body limits, CORS, request ids, metrics ----------------

# HTTPS: on by default in production; off for local use, tests and the benchmark.
HTTPS = env.bool("DJANGO_HTTPS", default=not DEBUG)
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("DJANGO_HSTS_PRELOAD", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Request bodies: the API takes small JSON documents; anything larger is a 413.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=64 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=1024 * 1024)

CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_URLS_REGEX = r"^/api/.*$"
CORS_EXPOSE_HEADERS = ["Retry-After", "Idempotent-Replayed", "X-Request-ID"]
CORS_ALLOW_HEADERS = [
    "accept",
    "authorization",
    "content-type",
    "idempotency-key",
    "x-request-id",
]

DJANGO_GUID = {
    "GUID_HEADER_NAME": "X-Request-ID",
    "VALIDATE_GUID": False,
    "RETURN_HEADER": True,
    "EXPOSE_HEADER": True,
}

# /metrics answers staff sessions and these networks (Prometheus scraping from the host). By
# default loopback, but only with no proxy in front: a proxy on the same host connects from
# loopback, so trusting it would open /metrics to everyone behind the proxy. A request that
# carries X-Forwarded-For (or Forwarded, X-Real-IP) is never let in by its address (metrics.py).
METRICS_ALLOWED_NETWORKS = [
    ipaddress.ip_network(cidr.strip(), strict=False)
    for cidr in env.list("METRICS_ALLOWED_CIDRS", default=[] if NUM_PROXIES else ["127.0.0.1/32", "::1/128"])
    if cidr.strip()
]

# ---- Applications, middleware, templates ------------------------------------------------------

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "corsheaders",
    "django_filters",
    "django_guid",
    "django_prometheus",
    "rest_framework",
    "rest_framework_simplejwt",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "tickets",
    "reservations",
    "fastticket",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # Before the probes, so that they too answer with an X-Request-ID and log with it; a client's id
    # that is not a short printable token is dropped first, and django-guid makes one instead.
    "fastticket.middleware.RequestIdMiddleware",
    "django_guid.middleware.guid_middleware",
    "fastticket.middleware.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "fastticket.middleware.BodySizeLimitMiddleware",
    "fastticket.middleware.AdminTimeZoneMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "fastticket.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "fastticket.urls"
WSGI_APPLICATION = "fastticket.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "fastticket" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# ---- Time, language, static files -------------------------------------------------------------

LANGUAGE_CODE = "en-us"
# The API always speaks UTC (API.md); the admin shows and reads times in ADMIN_TIME_ZONE.
TIME_ZONE = "UTC"
ADMIN_TIME_ZONE = env.str("DJANGO_TIME_ZONE", default="UTC")
try:
    zoneinfo.ZoneInfo(ADMIN_TIME_ZONE)
except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
    raise ImproperlyConfigured(f"DJANGO_TIME_ZONE={ADMIN_TIME_ZONE!r} is not an IANA time zone name.") from exc
USE_I18N = True
USE_TZ = True
# Times with seconds in the admin: a sale that sells out in ten seconds is not one instant.
FORMAT_MODULE_PATH = ["fastticket.formats"]

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ---- Logging: one line per event, with the request id -----------------------------------------

LOG_LEVEL = env.str("DJANGO_LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "django_guid.log_filters.CorrelationId"}},
    "formatters": {
        "line": {
            "()": "fastticket.logging.OneLineFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s",
        },
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "line",
            "filters": ["request_id"],
        },
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["stdout"], "level": LOG_LEVEL, "propagate": False},
        "django_guid": {"handlers": ["stdout"], "level": "WARNING", "propagate": False},
        # 4xx answers are business as usual (a 409 per sold-out attempt): the access log has them.
        "django.request": {"handlers": ["stdout"], "level": "ERROR", "propagate": False},
        # python-redis-lock logs every acquire and release at INFO.
        "redis_lock": {"handlers": ["stdout"], "level": "WARNING", "propagate": False},
    },
}
