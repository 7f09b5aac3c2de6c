# The image of the operator and of its backup Jobs:
#   docker build -t tibackup:latest .
# (Not built in CI: the build machines have no Docker engine.)

# --- builder: wheels, including mysqlclient (compiles against libmariadb) and tibackup's C row reader
FROM python:3.11-slim AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config libmariadb-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[operator]'

# --- runtime
FROM python:3.11-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends mariadb-client libmariadb3 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=builder /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
RUN groupadd --gid 10001 tibackup \
 && useradd --uid 10001 --gid 10001 --home-dir /home/tibackup --create-home tibackup \
 && mkdir -p /var/lib/tibackup/staging && chown -R 10001:10001 /var/lib/tibackup
USER 10001:10001
ENV PYTHONUNBUFFERED=1
ENTRYPOINT ["tibackup"]
CMD ["--help"]
