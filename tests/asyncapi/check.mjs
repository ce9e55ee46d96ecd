// Validates docs/asyncapi.json with the AsyncAPI parser, then generates TypeScript models from it
// with Modelina (what a client author would run) and prints, per request/reply operation, the
// generated reply type and the type of its `data`. tests/integration/test_asyncapi_client.py runs
// it and checks the answer against the catalogue.
//   node tests/asyncapi/check.mjs docs/asyncapi.json
import { readFileSync } from "node:fs";
import { Parser } from "@asyncapi/parser";
import { TypeScriptGenerator } from "@asyncapi/modelina";

const path = process.argv[2];
const text = readFileSync(path, "utf8");
const parser = new Parser();
const { document, diagnostics } = await parser.parse(text);
const errors = diagnostics.filter((d) => d.severity === 0);
if (!document || errors.length) {
  console.log(JSON.stringify({ valid: false, errors: errors.map((d) => `${d.path.join(".")}: ${d.message}`) }));
  process.exit(0);
}
const replies = {};
for (const op of document.operations().all()) {
  const reply = op.reply();
  if (!reply) continue;
  const msgs = reply.messages().all().map((m) => m.name() ?? m.id());
  replies[op.id()] = { request: op.messages().all().map((m) => m.name() ?? m.id()), reply: msgs };
}
const servers = document.servers().all().map((s) => ({ id: s.id(), protocol: s.protocol(), host: s.host() }));
const intake = document.messages().all().find((m) => m.name() === "ReferralSubmission");
const intakeHeaders = intake?.headers()?.required() ?? [];

// A property's type by name: a model's name, or the names of a union's members (e.g. CaseView | null).
function typeOf(model) {
  if (!model) return ["?"];
  if (model.ref && !Array.isArray(model.union) && model.ref !== model) {
    const named = model.ref.constructor?.name;
    if (named === "ConstrainedObjectModel") return [model.ref.name];
    return typeOf(model.ref);
  }
  if (Array.isArray(model.union)) return model.union.flatMap((m) => typeOf(m));
  return [model.type];
}

const generator = new TypeScriptGenerator({ modelType: "interface" });
const models = await generator.generate(JSON.parse(text));
const types = {};
for (const m of models) {
  const props = m.model.properties ?? {};
  types[m.modelName] = Object.fromEntries(
    Object.entries(props).map(([k, p]) => [k, typeOf(p.property)]),
  );
}
console.log(JSON.stringify({ valid: true, warnings: diagnostics.length, servers, intakeHeaders, replies, types }));
