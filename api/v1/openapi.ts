/**
 * The OpenAPI 3.1 description of /api/v1, generated from the same route
 * declarations that are mounted (api/v1/route.ts), with zod's JSON Schema
 * output (draft 2020-12, which OpenAPI 3.1 uses). Dates are ISO 8601 strings
 * on the wire. Each operation also carries `x-atlantic` with its access rule,
 * verified-email rule, plan feature and rate limits.
 */
import { z } from 'zod';
import type { AnyRoute } from './route.js';

type JsonSchema = Record<string, unknown>;

function toSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const json = z.toJSONSchema(schema, {
    io,
    unrepresentable: 'any',
    override: (ctx) => {
      const def = (ctx.zodSchema as { _zod: { def: { type: string } } })._zod.def;
      if (def.type === 'date') {
        ctx.jsonSchema.type = 'string';
        ctx.jsonSchema.format = 'date-time';
      }
    },
  }) as JsonSchema;
  delete json.$schema;
  return json;
}

/** `/me/invoices/:number` -> `/me/invoices/{number}`. */
export function openApiPath(path: string): string {
  return path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

const errorSchema: JsonSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message', 'requestId'],
      properties: {
        code: { type: 'string', description: 'A stable machine-readable code, e.g. RATE_LIMITED.' },
        message: { type: 'string', description: 'For people: what went wrong and what to do.' },
        requestId: { type: 'string', description: 'Quote it to support.' },
        details: { type: 'object', description: 'Facts for programs, e.g. details.reason.' },
      },
    },
  },
};

function parameters(
  schema: z.ZodType | undefined,
  where: 'path' | 'query' | 'header',
): JsonSchema[] {
  if (!schema) return [];
  const json = toSchema(schema, 'input');
  const properties = (json.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((json.required ?? []) as string[]);
  return Object.entries(properties).map(([name, property]) => ({
    name,
    in: where,
    required: where === 'path' || required.has(name),
    schema: property,
    ...(typeof property.description === 'string' ? { description: property.description } : {}),
  }));
}

function operation(route: AnyRoute): JsonSchema {
  const status = String(route.status ?? 200);
  const success: JsonSchema =
    route.file !== undefined
      ? {
          description: 'The file.',
          content: { [route.file]: { schema: { type: 'string', format: 'binary' } } },
        }
      : route.status === 204 || route.response === undefined
        ? { description: 'Done; no body.' }
        : {
            description: 'Success.',
            content: { 'application/json': { schema: toSchema(route.response, 'output') } },
          };
  const errors: Record<string, JsonSchema> = {
    '400': { $ref: '#/components/responses/Error' },
  };
  if (route.access !== 'public') errors['401'] = { $ref: '#/components/responses/Error' };
  if (route.access === 'admin' || route.verifiedEmail !== false || route.planFeature) {
    errors['403'] = { $ref: '#/components/responses/Error' };
  }
  if (route.rateLimit) errors['429'] = { $ref: '#/components/responses/Error' };
  errors.default = { $ref: '#/components/responses/Error' };
  return {
    operationId: route.operationId,
    summary: route.summary,
    ...(route.description ? { description: route.description } : {}),
    tags: [route.tag],
    security: route.access === 'public' ? [] : [{ bearerAuth: [] }],
    parameters: [
      ...parameters(route.params, 'path'),
      ...parameters(route.query, 'query'),
      ...parameters(route.headers, 'header'),
    ],
    ...(route.body
      ? {
          requestBody: {
            required: true,
            content: { 'application/json': { schema: toSchema(route.body, 'input') } },
          },
        }
      : {}),
    responses: { [status]: success, ...errors },
    'x-atlantic': {
      access: route.access,
      verifiedEmail: route.access === 'public' ? false : (route.verifiedEmail ?? true),
      ...(route.planFeature ? { planFeature: route.planFeature } : {}),
      ...(route.rateLimit
        ? {
            rateLimit: {
              ...(route.rateLimit.perIp ? { perIp: route.rateLimit.perIp } : {}),
              ...(route.rateLimit.perAccount
                ? { perAccount: route.rateLimit.perAccount.rules }
                : {}),
            },
          }
        : {}),
    },
  };
}

export interface OpenApiInfo {
  version: string;
  /** The server the description points at (PUBLIC_URL). */
  serverUrl: string;
}

export function buildOpenApi(routes: readonly AnyRoute[], info: OpenApiInfo): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const route of routes) {
    const path = openApiPath(route.path);
    paths[path] ??= {};
    paths[path][route.method] = operation(route);
  }
  const tags = [...new Set(routes.map((route) => route.tag))].map((name) => ({ name }));
  return {
    openapi: '3.1.0',
    info: {
      title: 'Atlantic API',
      version: info.version,
      description:
        'Accounts, plans, billing, usage and proxy access over HTTP. Errors are `{ error: { code, message, requestId } }`.',
    },
    servers: [{ url: `${info.serverUrl.replace(/\/$/, '')}/api/v1` }],
    tags,
    paths,
    components: {
      securitySchemes: {
        bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
      },
      schemas: { Error: errorSchema },
      responses: {
        Error: {
          description: 'An error.',
          content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
        },
      },
    },
  };
}
