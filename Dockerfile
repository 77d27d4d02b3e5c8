# jobline container image: compiled JavaScript on Node 24 LTS, without tsx and without the
# embedded PostgreSQL binaries (an optional dependency, pruned), so it needs DATABASE_URL.
#
#   docker build -t jobline .
#   docker run --rm -e DATABASE_URL=postgres://... -p 8080:8080 jobline
#
# Both stages use the same base, pinned by digest (node 24.18.0, Debian bookworm slim). Refresh
# both lines together with the digest of `docker buildx imagetools inspect node:24-bookworm-slim`.

# ---- build: all dependencies, tsc, then prune to what runs -------------------
FROM node:24.18.0-bookworm-slim@sha256:6f7b03f7c2c8e2e784dcf9295400527b9b1270fd37b7e9a7285cf83b6951452d AS build
WORKDIR /app
COPY package.json package-lock.json ./
# postinstall applies patches/ (the postgres.js fix) and fails the build if one no longer applies.
COPY patches ./patches
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/build.mjs ./scripts/
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev --omit=optional --no-audit --no-fund \
 && npm cache clean --force

# ---- runtime ----------------------------------------------------------------
FROM node:24.18.0-bookworm-slim@sha256:6f7b03f7c2c8e2e784dcf9295400527b9b1270fd37b7e9a7285cf83b6951452d AS runtime
LABEL org.opencontainers.image.title="jobline" \
      org.opencontainers.image.description="HTTP job orchestration on PostgreSQL" \
      org.opencontainers.image.licenses="MIT"
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080
WORKDIR /app

# Application files stay owned by root (read-only for the runtime user).
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY drizzle ./drizzle

USER node
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=6 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/readyz').then(r=>process.exit(r.ok?0:1)).catch(()=>process.exit(1))"]
# Other commands: worker, migrate, keys create --tenant T --role R (all need DATABASE_URL).
CMD ["node", "bin/jobline.js", "serve"]
