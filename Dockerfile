# syntax=docker/dockerfile:1
# Gatehouse: build with dev dependencies, run with production ones only.

# The base of every stage. The published image uses the official one; CI
# builds against a stand-in made from Debian and Node's own binary (.ci/image).
ARG BASE_IMAGE=node:24-slim

FROM ${BASE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Behind a TLS-intercepting proxy, pass its CA as a build secret
# (--secret id=npm-ca,src=ca.pem): it is mounted for this step only, and no
# layer keeps it.
RUN --mount=type=secret,id=npm-ca,required=false \
    if [ -f /run/secrets/npm-ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/npm-ca; fi; \
    npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM ${BASE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=secret,id=npm-ca,required=false \
    if [ -f /run/secrets/npm-ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/npm-ca; fi; \
    npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM ${BASE_IMAGE} AS runtime
ENV NODE_ENV=production \
    GATEHOUSE_CONFIG=/etc/gatehouse/routes.yaml
WORKDIR /app
COPY --from=deps --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist ./dist
COPY --chown=root:root package.json ./
COPY --chown=root:root schema ./schema
# Nothing is written at run time, so the root filesystem can be read-only;
# the app's files belong to root and are not writable by the runtime user.
# Numeric, so Kubernetes' runAsNonRoot can verify it without /etc/passwd:
# 1000 is the image's `node` user, so HOME and the passwd entry exist.
USER 1000:1000
# The public port and the metrics listener (metrics.port); both are set in
# the config, these are their defaults.
EXPOSE 3000 9464
# The probe reads the same config as the server, so it follows server.port;
# from a file the running gateway refused to reload, server.host and .port alone.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "dist/cli/index.js", "health", "--config", "/etc/gatehouse/routes.yaml"]
# Exec form: node is PID 1's child-free process and receives SIGTERM itself.
CMD ["node", "dist/cli/index.js", "start", "--config", "/etc/gatehouse/routes.yaml"]
