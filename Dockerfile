# The servicegraph API/CLI image used by docker-compose.yml.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY cypher ./cypher
RUN pip install --no-cache-dir .
ENTRYPOINT ["servicegraph"]
CMD ["summary"]
