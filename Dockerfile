# jobline container image.
#
# The app runs its TypeScript sources directly through tsx (a production
# dependency) via bin/jobline.js, so there is no build stage: the runtime image
# holds package.json, the production node_modules, bin/, src/ and drizzle/.
#
#   docker build -t jobline .
#   docker run --rm -e DATABASE_URL=postgres://... -p 8080:8080 jobline
#
# Without DATABASE_URL, `jobline start` falls back to an embedded PostgreSQL
# whose data lives in $JOBLINE_DATA_DIR (/data, owned by the node user).

# ---- deps: production dependencies only ------------------------------------
FROM node:20-bookworm-slim AS deps
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
# postinstall patches the postgres.js driver (scripts/patch-postgres.mjs explains why).
COPY scripts/patch-postgres.mjs ./scripts/
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# ---- runtime ---------------------------------------------------------------
FROM node:20-bookworm-slim AS runtime
LABEL org.opencontainers.image.title="jobline" \
      org.opencontainers.image.description="HTTP job orchestration on PostgreSQL" \
      org.opencontainers.image.licenses="MIT"
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    JOBLINE_DATA_DIR=/data
WORKDIR /app

# Application files stay owned by root (read-only for the runtime user); only
# the embedded-PostgreSQL data directory is writable by `node`.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json ./
COPY bin ./bin
COPY src ./src
COPY drizzle ./drizzle
RUN mkdir -p /data && chown node:node /data

USER node
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=6 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/readyz').then(r=>process.exit(r.ok?0:1)).catch(()=>process.exit(1))"]
# Other commands: worker, migrate, start, keys create --tenant T --role R.
CMD ["node", "bin/jobline.js", "serve"]
