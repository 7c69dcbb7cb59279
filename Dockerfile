# syntax=docker/dockerfile:1
# The one aifinops image: the three daemons (aifinops-gpu-exporter, aifinops-token-exporter,
# aifinops-bridge) and the `aifinops` CLI, run as nobody (65534) as charts/aifinops expects.
#
#   make image [IMAGE=registry/aifinops:0.1.0]      # docker build -t $(IMAGE) .
#
# No NVIDIA library is installed: the NVIDIA container runtime mounts libnvidia-ml.so.1 of the
# node's driver into the GPU exporter (the chart's runtimeClassName: nvidia).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS wheels
WORKDIR /src
# Only what the wheel is built from (see pyproject.toml: packages and package-dir).
COPY pyproject.toml README.md ./
COPY exporters/ exporters/
COPY bridge/ bridge/
COPY cli/ cli/
# aifinops and every dependency as wheels, so the runtime stage installs offline.
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
# pip compiles the bytecode here; the chart's root file system is read-only at run time.
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    PIP_DISABLE_PIP_VERSION_CHECK=1 pip install --no-cache-dir --no-index --find-links /wheels aifinops
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# The daemons write only where the chart mounts volumes (/tmp, /var/lib/aifinops).
WORKDIR /tmp
USER 65534:65534
EXPOSE 9871 9872 9873
ENTRYPOINT []
CMD ["aifinops", "--help"]
