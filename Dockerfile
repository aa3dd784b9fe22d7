# Atlantic: multi-stage build. The first stage compiles TypeScript to dist/ and
# keeps only production dependencies; the runtime image runs as the non-root
# `node` user. docker-compose.yml pairs it with MongoDB.

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json main.ts ./
COPY api ./api
COPY bot ./bot
COPY config ./config
COPY core ./core
COPY jobs ./jobs
COPY lib ./lib
COPY models ./models
COPY proxy ./proxy
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
# DejaVu Sans has the Naira sign (₦) for invoice PDFs; without it they print "NGN".
RUN apt-get update \
  && apt-get install -y --no-install-recommends fonts-dejavu-core \
  && rm -rf /var/lib/apt/lists/*
RUN mkdir -p /app/data && chown node:node /app/data
COPY --from=build --chown=node:node /app/package.json ./package.json
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
USER node
EXPOSE 3000 1080 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.API_PORT || 3000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/main.js"]
