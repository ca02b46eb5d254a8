// Judges contract metadata (the answer to org.hyperledger.fabric:GetMetadata) against the
// contract schema shipped inside fabric-contract-api, validated the way fabric-shim validates a
// contract's metadata file: the same Ajv (fabric-shim's own dependency), draft-04 meta-schema.
//
// Usage: node metadata/validate.js < metadata.json
// Prints one JSON line {valid, errors, schema, ajv}; exits 0 when valid, 1 when not, 2 when the
// input is not JSON.
'use strict';

const fs = require('fs');
const path = require('path');

const shimDir = path.dirname(require.resolve('fabric-shim/package.json'));
// Resolved from fabric-shim so that the validator is the one the official runtime uses.
const fromShim = (id) => require(require.resolve(id, {paths: [shimDir]}));
const Ajv = fromShim('ajv');
const ajvVersion = fromShim('ajv/package.json').version;
const draft04 = fromShim('ajv/lib/refs/json-schema-draft-04.json');
const schemaPath = require.resolve('fabric-contract-api/schema/contract-schema.json');
const schema = JSON.parse(fs.readFileSync(schemaPath, 'utf8'));

let metadata;
try {
    metadata = JSON.parse(fs.readFileSync(0, 'utf8'));
} catch (e) {
    process.stdout.write(JSON.stringify({valid: false, errors: [String(e)]}) + '\n');
    process.exit(2);
}

const ajv = new Ajv({schemaId: 'id', allErrors: true, logger: false});
ajv.addMetaSchema(draft04);
const valid = ajv.validate(schema, metadata);
process.stdout.write(JSON.stringify({
    valid,
    errors: ajv.errors || [],
    schema: path.relative(path.join(__dirname, '..'), schemaPath),
    ajv: ajvVersion,
}) + '\n');
process.exit(valid ? 0 : 1);
