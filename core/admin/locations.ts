/**
 * Locations and their upstreams (the exits of a location's pool), for
 * admins: core/locations.ts does the work, this adds the admin check and the
 * audit trail. Upstream passwords are never returned nor recorded.
 *
 * Health is what the gateways write when a dial fails (an exit is skipped
 * until its retry time); an admin can mark an exit healthy again at once,
 * after fixing it.
 */
import {
  addExit,
  addLocation,
  listLocations,
  markExitHealth,
  removeExit,
  removeLocation,
  type ExitInput,
  type ExitView,
  type LocationInput,
  type LocationView,
} from '../locations.js';
import { audited, entry, recordView, requireAdmin, type AdminContext } from './context.js';

/** An exit as admins see it: no password. */
export type UpstreamView = Omit<ExitView, 'password'> & { hasPassword: boolean };

export interface AdminLocationView extends Omit<LocationView, 'exits'> {
  exits: UpstreamView[];
}

function withoutSecrets(location: LocationView): AdminLocationView {
  return {
    ...location,
    exits: location.exits.map(({ password, ...exit }) => ({
      ...exit,
      hasPassword: password !== undefined && password !== '',
    })),
  };
}

/** Every location with its upstreams and their health; recorded as `locations.viewed`. */
export async function listLocationsForAdmin(ctx: AdminContext): Promise<AdminLocationView[]> {
  await requireAdmin(ctx, 'locations.list');
  const locations = await listLocations();
  await recordView(ctx, 'locations.viewed', { kind: 'locations', id: '*' });
  return locations.map(withoutSecrets);
}

export async function addLocationAsAdmin(
  ctx: AdminContext,
  input: LocationInput,
): Promise<AdminLocationView> {
  await requireAdmin(ctx, 'locations.add');
  const code = (input.code ?? input.countryCode).trim().toLowerCase();
  return audited(
    ctx,
    entry(ctx, 'location.added', { kind: 'location', id: code }, { ...input }),
    async () => withoutSecrets(await addLocation(input)),
  );
}

export async function removeLocationAsAdmin(ctx: AdminContext, code: string): Promise<void> {
  await requireAdmin(ctx, 'locations.remove');
  const id = code.trim().toLowerCase();
  await audited(ctx, entry(ctx, 'location.removed', { kind: 'location', id }), () =>
    removeLocation(id),
  );
}

export async function addUpstream(
  ctx: AdminContext,
  location: string,
  exit: ExitInput,
): Promise<AdminLocationView> {
  await requireAdmin(ctx, 'upstreams.add');
  const code = location.trim().toLowerCase();
  const { password, ...recorded } = exit;
  return audited(
    ctx,
    entry(
      ctx,
      'upstream.added',
      { kind: 'upstream', id: `${code}/${exit.exitId}` },
      { ...recorded, hasPassword: password !== undefined && password !== '' },
    ),
    async () => withoutSecrets(await addExit(code, exit)),
  );
}

export async function removeUpstream(
  ctx: AdminContext,
  location: string,
  exitId: string,
): Promise<AdminLocationView> {
  await requireAdmin(ctx, 'upstreams.remove');
  const code = location.trim().toLowerCase();
  return audited(
    ctx,
    entry(ctx, 'upstream.removed', { kind: 'upstream', id: `${code}/${exitId}` }),
    async () => withoutSecrets(await removeExit(code, exitId)),
  );
}

/** Marks an upstream healthy now (after an admin fixed it), so gateways use it again at once. */
export async function markUpstreamHealthy(
  ctx: AdminContext,
  location: string,
  exitId: string,
): Promise<void> {
  await requireAdmin(ctx, 'upstreams.health');
  const code = location.trim().toLowerCase();
  await audited(
    ctx,
    entry(ctx, 'upstream.marked_healthy', { kind: 'upstream', id: `${code}/${exitId}` }),
    () => markExitHealth(code, exitId, { healthy: true }, { clock: ctx.clock }),
  );
}
