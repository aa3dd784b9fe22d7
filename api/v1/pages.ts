/**
 * Server-rendered pages that links in emails land on (to be written).
 */
import express from 'express';
import type { ApiDeps } from './route.js';

export function accountPages(_deps: ApiDeps): express.Router {
  return express.Router();
}
