'use strict';
// Judge for the Rust schema: the official @hyperledger/fabric-protos classes decode, re-encode
// and build messages, and describe the official schema as their generated code defines it.
//
// Usage: node roundtrip.js REQUEST.json > RESPONSE.json
// Request:  { files: ["common/common.proto", ...],
//             decode: [{ id, type, b64 }],            // decode with the official class, re-encode
//             build:  [{ id, spec }] }                // build with the official setters, encode
// Response: { schema: { "<file>": { messages, enums, services } | { missing: true } },
//             decoded: [{ id, b64, obj } | { id, error }],
//             built:   [{ id, b64 } | { id, error }] }
// A spec is { type: "pkg.Message", fields: [{ name, kind, label, value }] } with kind one of
// scalar | bytes | enum | message, label one of single | repeated | map; bytes are base64 and map
// values are [[key, value], ...].

const fs = require('fs');
const path = require('path');

const LIB = path.join(path.dirname(require.resolve('@hyperledger/fabric-protos/package.json')), 'lib');

function loadFile(protoFile) {
    const stem = protoFile.replace(/\.proto$/, '');
    const pbPath = path.join(LIB, stem + '_pb.js');
    if (!fs.existsSync(pbPath)) {
        return { missing: true };
    }
    const source = fs.readFileSync(pbPath, 'utf8');
    require(pbPath);
    const grpcPath = path.join(LIB, stem + '_grpc_pb.js');
    const grpc = fs.existsSync(grpcPath) ? require(grpcPath) : {};
    return { source, grpc };
}

function resolve(fullName) {
    let obj = globalThis.proto;
    for (const part of fullName.split('.')) {
        if (obj === undefined || obj === null) {
            break;
        }
        obj = obj[part];
    }
    if (obj === undefined || obj === null) {
        throw new Error(`no official type ${fullName}`);
    }
    return obj;
}

// Class -> full protobuf name, for naming service request and response types.
function classNames() {
    const names = new Map();
    const walk = (obj, prefix, depth) => {
        if (depth > 8) {
            return;
        }
        for (const key of Object.keys(obj)) {
            const value = obj[key];
            if (typeof value === 'function' && value.prototype && typeof value.deserializeBinary === 'function') {
                // Generated files also copy imported classes onto `proto` itself (unqualified
                // aliases); keep the most qualified name.
                const name = prefix + key;
                const known = names.get(value);
                if (known === undefined || known.split('.').length < name.split('.').length) {
                    names.set(value, name);
                }
                walk(value, prefix + key + '.', depth + 1);
            } else if (value && typeof value === 'object' && !Array.isArray(value) && /^[a-z]/.test(key)) {
                walk(value, prefix + key + '.', depth + 1);
            }
        }
    };
    walk(globalThis.proto, '', 0);
    return names;
}

// The fields a message writes, in the order its generated serializer writes them.
function writtenFields(cls) {
    const code = cls.serializeBinaryToWriter.toString();
    const fields = [];
    const re = /writer\.(write\w+)\(\s*(\d+),|f\.serializeBinary\((\d+), writer, jspb\.BinaryWriter\.prototype\.(\w+), jspb\.BinaryWriter\.prototype\.(\w+)/g;
    let m;
    while ((m = re.exec(code)) !== null) {
        if (m[1]) {
            fields.push({ number: Number(m[2]), writer: m[1] });
        } else {
            fields.push({ number: Number(m[3]), writer: 'map', keyWriter: m[4], valueWriter: m[5] });
        }
    }
    return fields;
}

function describe(protoFile, names) {
    const loaded = loadFile(protoFile);
    if (loaded.missing) {
        return { missing: true };
    }
    const symbols = [...loaded.source.matchAll(/goog\.exportSymbol\('proto\.([\w.]+)'/g)].map((m) => m[1]);
    const messages = {};
    const enums = {};
    for (const name of symbols) {
        const obj = resolve(name);
        if (typeof obj === 'function') {
            messages[name] = {
                fields: writtenFields(obj),
                oneofs: obj.oneofGroups_ || [],
                repeated: obj.repeatedFields_ || [],
            };
        } else {
            const parentName = name.split('.').slice(0, -1).join('.');
            const parent = symbols.includes(parentName) ? resolve(parentName) : undefined;
            const isOneofCase = /Case$/.test(name) && typeof parent === 'function' &&
                Array.isArray(parent.oneofGroups_) && Object.keys(obj).some((k) => /_NOT_SET$/.test(k));
            if (!isOneofCase) {
                enums[name] = obj;
            }
        }
    }
    const services = {};
    for (const [exportName, def] of Object.entries(loaded.grpc)) {
        if (!/Service$/.test(exportName) || typeof def !== 'object') {
            continue;
        }
        services[exportName] = Object.values(def).map((method) => ({
            path: method.path,
            requestStream: method.requestStream,
            responseStream: method.responseStream,
            requestType: names.get(method.requestType) || null,
            responseType: names.get(method.responseType) || null,
        }));
    }
    return { messages, enums, services };
}

// google-protobuf's JavaScript names: words split at '_', lowercased, then camel-cased.
function upperCamel(name) {
    return name.split('_').filter((w) => w.length > 0)
        .map((w) => w.toLowerCase())
        .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
        .join('');
}

function method(msg, prefix, fieldName, suffix) {
    const base = prefix + upperCamel(fieldName) + suffix;
    // Names that clash with jspb.Message methods (e.g. setExtension) get a '$' suffix in
    // generated code; the unsuffixed method is then jspb's own.
    for (const candidate of [base + '$', base]) {
        if (typeof msg[candidate] === 'function') {
            return msg[candidate].bind(msg);
        }
    }
    throw new Error(`${msg.constructor.name || 'message'} has no method ${base}`);
}

function convert(kind, value) {
    switch (kind) {
        case 'bytes':
            return new Uint8Array(Buffer.from(value, 'base64'));
        case 'message':
            return build(value);
        default:
            return value;
    }
}

function build(spec) {
    const Cls = resolve(spec.type);
    const msg = new Cls();
    for (const field of spec.fields) {
        if (field.label === 'map') {
            const map = method(msg, 'get', field.name, 'Map')();
            for (const [key, value] of field.value) {
                map.set(key, convert(field.kind, value));
            }
        } else if (field.label === 'repeated') {
            method(msg, 'set', field.name, 'List')(field.value.map((v) => convert(field.kind, v)));
        } else {
            method(msg, 'set', field.name, '')(convert(field.kind, field.value));
        }
    }
    return msg;
}

// toObject() leaves bytes inside maps as Uint8Array; show them as { u8: base64 }.
function plain(value) {
    if (value instanceof Uint8Array) {
        return { u8: Buffer.from(value).toString('base64') };
    }
    if (Array.isArray(value)) {
        return value.map(plain);
    }
    if (value && typeof value === 'object') {
        return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
    }
    return value;
}

function main() {
    const request = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
    const schema = {};
    for (const file of request.files || []) {
        loadFile(file);
    }
    const names = classNames();
    for (const file of request.files || []) {
        schema[file] = describe(file, names);
    }
    const decoded = (request.decode || []).map(({ id, type, b64 }) => {
        try {
            const msg = resolve(type).deserializeBinary(new Uint8Array(Buffer.from(b64, 'base64')));
            return { id, b64: Buffer.from(msg.serializeBinary()).toString('base64'), obj: plain(msg.toObject()) };
        } catch (e) {
            return { id, error: String(e && e.stack ? e.stack.split('\n').slice(0, 3).join(' | ') : e) };
        }
    });
    const built = (request.build || []).map(({ id, spec }) => {
        try {
            return { id, b64: Buffer.from(build(spec).serializeBinary()).toString('base64') };
        } catch (e) {
            return { id, error: String(e && e.message ? e.message : e) };
        }
    });
    process.stdout.write(JSON.stringify({ schema, decoded, built }));
}

main();
