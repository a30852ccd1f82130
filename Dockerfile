# The votescore image used by docker-compose.yml: the package and its console script.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY streams ./streams
COPY models ./models
RUN pip install --no-cache-dir .
RUN mkdir -p /data && useradd --create-home votescore && chown votescore /data
USER votescore
CMD ["votescore", "worker"]
