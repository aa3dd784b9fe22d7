// Jest loads global setup outside its module system (no moduleNameMapper, no
// ESM transform), so this stub lets tsx load the TypeScript setup, which then
// keeps the test database server alive in jest's parent process.
import { register } from 'tsx/esm/api';

register();
const { default: globalSetup } = await import('./database-server.ts');
export default globalSetup;
