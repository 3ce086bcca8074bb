# rushgate: one image for both roles (docs/DEPLOYING.md). Build: docker build -t rushgate .
# Run:   docker run rushgate reception --config /etc/rushgate/deployment.yaml
#        docker run rushgate content --config /etc/rushgate/deployment.yaml --id a
FROM node:20-bookworm-slim AS build
WORKDIR /src
# better-sqlite3 builds from source when no prebuilt binary fits.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# `prepare` builds dist/, which needs the sources: install without scripts first, then build.
RUN npm ci --ignore-scripts && npm rebuild better-sqlite3
COPY tsconfig.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /opt/rushgate
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# The image's own unprivileged user (uid 1000 "node"); the store and items live in volumes.
RUN mkdir -p /var/lib/rushgate && chown node:node /var/lib/rushgate
USER node
# Public ports >1024, so no privilege is needed to bind them.
EXPOSE 8080 9080
ENTRYPOINT ["node", "/opt/rushgate/dist/cli/main.js"]
CMD ["--help"]
