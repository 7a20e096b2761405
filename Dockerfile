# syntax=docker/dockerfile:1
# The one sbp image: the schema registry, the faust worker, the gateway and the
# `sbp` CLI all run from it; docker-compose.kafka.yml picks the command.
FROM python:3.11-slim-bookworm

# SBP_STATE_DIR: the package is installed into site-packages, so the default
# state dir (beside the sources) would be inside it; keep state on a volume path.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    SBP_STATE_DIR=/var/lib/sbp

# A fixed uid so volume ownership survives rebuilds.
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/sbp sbp \
    && install -d -o sbp -g sbp -m 0700 /var/lib/sbp

# Exact pins first, in their own layer: a code change doesn't reinstall them.
# Bind mounts, not COPY, so nothing from the build context lands in a layer.
RUN --mount=type=bind,source=requirements.lock,target=/tmp/requirements.lock \
    --mount=type=cache,target=/root/.cache/pip \
    pip install -r /tmp/requirements.lock

# --no-deps: the lock above is the whole dependency set. The context is mounted
# read-write only so setuptools can write its build files; they are discarded,
# and only what the package declares (code, .sql, .avsc) is installed. Local
# state such as .devstack/ (keys, passwords) therefore never enters the image.
RUN --mount=type=bind,target=/src,rw \
    pip install --no-cache-dir --no-deps /src

# Fail the build, not the first container, if package data went missing: the
# gateway and `register-schemas` need the .avsc files, `init` the migrations.
RUN python -c "from schemas.catalog import subjects; from sinks.timescale.migrate import load_migrations; assert subjects(), 'no schemas/avro/*.avsc installed'; assert load_migrations(), 'no migrations installed'"

USER sbp
WORKDIR /home/sbp
# registry, gateway, worker web (readiness); compose publishes them.
EXPOSE 8081 8000 6066
CMD ["sbp", "--help"]
