#!/usr/bin/env node
// Validates Kubernetes manifests offline:
//   validate_k8s.js FILE...
// Every YAML document must be an object whose apiVersion and kind npm's kubernetes-models
// knows; it is checked against that kind's OpenAPI schema, then against the API server's rules
// that the schemas do not carry (names, label syntax, a pod template's image and restart
// policy, an Indexed Job's pod hostnames). Exits 0 when all are valid, 1 with the first error
// per document on stderr otherwise.
//
// The schemas accept fields they do not know; a misspelt field passes here (the API server
// would reject it under kubectl's strict validation), so tests also read the fields they need.
"use strict";
const fs = require("fs");
const path = require("path");
const { pathToFileURL } = require("url");

// tools/npm/node_modules, installed by tools/setup.sh; the same relative place in the source
// tree and in a Bazel test's runfiles.
const modules = path.resolve(__dirname, "..", "..", "tools", "npm", "node_modules");
const YAML = require(path.join(modules, "yaml"));

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;  // RFC 1123 label
const DNS_1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;  // Service names
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

function checkDnsLabel(errors, where, value, pattern = DNS_LABEL) {
  if (typeof value !== "string" || value.length > 63 || !pattern.test(value)) {
    errors.push(`${where} ${JSON.stringify(value)} is not a valid DNS label`);
  }
}

function checkLabels(errors, where, labels) {
  if (labels === undefined || labels === null) return;
  for (const [key, value] of Object.entries(labels)) {
    const slash = key.lastIndexOf("/");
    const prefix = slash >= 0 ? key.slice(0, slash) : null;
    const name = key.slice(slash + 1);
    if (prefix !== null && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) {
      errors.push(`${where} key ${JSON.stringify(key)}: prefix is not a DNS subdomain`);
    }
    if (name.length > 63 || !QUALIFIED_NAME.test(name)) {
      errors.push(`${where} key ${JSON.stringify(key)} is not a qualified name`);
    }
    if (typeof value !== "string" || value.length > 63 || !LABEL_VALUE.test(value)) {
      errors.push(`${where}[${JSON.stringify(key)}]: ${JSON.stringify(value)} is not a label value`);
    }
  }
}

function checkPodTemplate(errors, where, template, allowedRestartPolicies) {
  checkLabels(errors, `${where}.metadata.labels`, template.metadata && template.metadata.labels);
  const spec = template.spec || {};
  if (allowedRestartPolicies && !allowedRestartPolicies.includes(spec.restartPolicy)) {
    errors.push(`${where}.spec.restartPolicy must be one of ${allowedRestartPolicies.join(", ")}`);
  }
  if (spec.subdomain !== undefined) checkDnsLabel(errors, `${where}.spec.subdomain`, spec.subdomain);
  checkLabels(errors, `${where}.spec.nodeSelector`, spec.nodeSelector);
  const containers = spec.containers || [];
  if (containers.length === 0) errors.push(`${where}.spec.containers: at least one is required`);
  containers.forEach((container, i) => {
    const at = `${where}.spec.containers[${i}]`;
    checkDnsLabel(errors, `${at}.name`, container.name);
    if (typeof container.image !== "string" || container.image.trim() === "") {
      errors.push(`${at}.image is required`);
    }
  });
}

// The API server's checks beyond the schema, for the kinds we render.
function serverRules(object) {
  const errors = [];
  const metadata = object.metadata || {};
  if (metadata.namespace !== undefined) {
    checkDnsLabel(errors, "metadata.namespace", metadata.namespace);
  }
  checkLabels(errors, "metadata.labels", metadata.labels);
  if (object.kind === "Service") {
    checkDnsLabel(errors, "metadata.name", metadata.name, DNS_1035_LABEL);
    checkLabels(errors, "spec.selector", object.spec && object.spec.selector);
  } else if (object.kind === "Job") {
    // The Job's name becomes a label value on its pods, and in Indexed mode pod hostnames.
    checkDnsLabel(errors, "metadata.name", metadata.name);
    const spec = object.spec || {};
    checkPodTemplate(errors, "spec.template", spec.template || {}, ["Never", "OnFailure"]);
    if (spec.completionMode === "Indexed") {
      if (!Number.isInteger(spec.completions)) {
        errors.push("spec.completions is required when completionMode is Indexed");
      } else {
        checkDnsLabel(errors, "the last pod's hostname", `${metadata.name}-${spec.completions - 1}`);
      }
    }
  } else if (typeof metadata.name !== "string" || !DNS_SUBDOMAIN.test(metadata.name) ||
             metadata.name.length > 253) {
    errors.push(`metadata.name ${JSON.stringify(metadata.name)} is not a DNS subdomain`);
  }
  return errors;
}

async function modelClass(apiVersion, kind) {
  if (typeof apiVersion !== "string" || !/^([a-z0-9.-]+\/)?v[0-9]+[a-z0-9]*$/.test(apiVersion) ||
      typeof kind !== "string" || !/^[A-Z][A-Za-z0-9]*$/.test(kind)) {
    throw new Error(`apiVersion ${JSON.stringify(apiVersion)} and kind ${JSON.stringify(kind)} ` +
                    "do not name a Kubernetes type");
  }
  // kubernetes-models is ECMAScript modules only; its files are <group>/<version>/<Kind>.js.
  const file = path.join(modules, "kubernetes-models", ...apiVersion.split("/"), `${kind}.js`);
  if (!fs.existsSync(file)) throw new Error(`unknown type ${apiVersion} ${kind}`);
  return (await import(pathToFileURL(file).href))[kind];
}

async function validateFile(file) {
  const failures = [];
  // YAML 1.1, as Kubernetes reads it: an unquoted yes/on is a boolean there.
  const documents = YAML.parseAllDocuments(fs.readFileSync(file, "utf8"), { version: "1.1" });
  let count = 0;
  for (const [i, document] of documents.entries()) {
    const where = `${file}: document ${i + 1}`;
    if (document.errors.length > 0) {
      failures.push(`${where}: ${document.errors[0].message}`);
      continue;
    }
    const object = document.toJS();
    if (object === null || object === undefined) continue;  // an empty document
    count++;
    if (typeof object !== "object" || Array.isArray(object)) {
      failures.push(`${where}: not an object`);
      continue;
    }
    const name = `${object.kind}/${object.metadata && object.metadata.name}`;
    try {
      const Model = await modelClass(object.apiVersion, object.kind);
      new Model(object).validate();
    } catch (error) {
      failures.push(`${where} (${name}): ${error.message}`);
      continue;
    }
    const errors = serverRules(object);
    if (errors.length > 0) failures.push(`${where} (${name}): ${errors.join("; ")}`);
  }
  if (count === 0) failures.push(`${file}: no Kubernetes object`);
  return { count, failures };
}

async function main() {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    console.error("usage: validate_k8s.js FILE...");
    return 2;
  }
  let ok = true;
  for (const file of files) {
    const { count, failures } = await validateFile(file);
    for (const failure of failures) console.error(failure);
    if (failures.length > 0) ok = false;
    else console.log(`${file}: ${count} valid object(s)`);
  }
  return ok ? 0 : 1;
}

main().then(
    (code) => process.exit(code),
    (error) => {
      console.error(error.stack || String(error));
      process.exit(1);
    });
