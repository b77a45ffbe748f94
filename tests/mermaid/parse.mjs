// Mermaid's own parser as a test oracle: `node parse.mjs FILE...` (or a chart on standard input) prints
// `FILE: ok` or `FILE: <mermaid's error>` for each chart and exits 1 when any fails to parse.
// Mermaid sanitizes labels with DOMPurify, which needs a DOM: jsdom's window is set up before mermaid loads.
import { readFileSync } from 'node:fs';
import { JSDOM } from 'jsdom';

const { window } = new JSDOM('');
globalThis.window = window;
globalThis.document = window.document;
const { default: mermaid } = await import('mermaid');

const files = process.argv.slice(2);
let failed = 0;
for (const file of files.length ? files : ['-']) {
  const text = readFileSync(file === '-' ? 0 : file, 'utf8');
  try {
    const { diagramType } = await mermaid.parse(text);
    console.log(`${file}: ok (${diagramType})`);
  } catch (error) {
    failed += 1;
    console.log(`${file}: ${String(error.message).replaceAll('\n', ' | ')}`);
  }
}
process.exit(failed ? 1 : 0);
