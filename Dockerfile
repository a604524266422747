FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY contracts ./contracts
COPY services ./services
RUN pip install --no-cache-dir .
ENV APIKEYS_EVENT_STORE=sqlite:////data/events.db \
    APIKEYS_VIEW_STORE=sqlite:////data/views.db
VOLUME /data
CMD ["apikeys", "serve-keys"]
