#!/usr/bin/env node
// Checks what Kubernetes' schemas cannot see in deploy/kubernetes, offline:
//   check_manifests.js DIR BINARY=SOURCE...
// Each BINARY=SOURCE names a source file that defines flags of /opt/prolong/bin/BINARY ("--name"
// literals, e.g. scheduler=services/scheduler/main.cc); BINARY "*" for flags every service
// has (common/cli.cc).
//   - kustomization.yaml lists every manifest of DIR, and only those, except *.example.yaml
//     (renderings shown for reference, never applied);
//   - every flag a container passes to a prolong binary (/opt/prolong/bin/NAME) is one that
//     binary defines;
//   - the objects agree with one another: workload selectors match their pod labels, Services
//     select a workload and name its ports, volumes and claims, service accounts and role
//     bindings exist, Prometheus annotations name the port --metrics-address listens on, and
//     host:port flags that name a Service in the namespace use one of its ports (worker
//     examples' --scheduler and --datamixer included).
// Exits 0 when all hold, 1 with every problem on stderr otherwise.
"use strict";
const fs = require("fs");
const path = require("path");

// npm's yaml, installed by tools/setup.sh, as validate_k8s.js finds it: node runs a script from
// its real path, so this is the source tree's tools/npm/node_modules.
const YAML = require(path.resolve(__dirname, "..", "..", "tools", "npm", "node_modules", "yaml"));

const problems = [];
const problem = (text) => problems.push(text);

function readObjects(file) {
  return YAML.parseAllDocuments(fs.readFileSync(file, "utf8"), { version: "1.1" })
      .map((document) => document.toJS())
      .filter((object) => object !== null && object !== undefined)
      .map((object) => ({ ...object, file: path.basename(file) }));
}

function checkKustomization(dir) {
  const kustomization = YAML.parse(fs.readFileSync(path.join(dir, "kustomization.yaml"), "utf8"));
  const listed = kustomization.resources || [];
  const manifests = fs.readdirSync(dir)
      .filter((name) => /\.ya?ml$/.test(name) && name !== "kustomization.yaml" &&
                        !/\.example\.ya?ml$/.test(name))
      .sort();
  for (const name of manifests) {
    if (!listed.includes(name)) problem(`kustomization.yaml: resources does not list ${name}`);
  }
  for (const name of listed) {
    if (!manifests.includes(name)) problem(`kustomization.yaml: lists ${name}, not a manifest here`);
  }
  if (kustomization.namespace !== "prolong") {
    problem(`kustomization.yaml: namespace is ${JSON.stringify(kustomization.namespace)}`);
  }
  return listed;
}

// The flags each binary defines: "--name" string literals in its sources.
function definedFlags(sources) {
  const flags = {};
  for (const pair of sources) {
    const [name, source] = pair.split("=");
    const text = fs.readFileSync(source, "utf8");
    const literals = [...text.matchAll(/"(--[a-z0-9][a-z0-9-]*)"/g)].map((m) => m[1]);
    flags[name] = new Set([...(flags[name] || []), ...literals]);
  }
  return flags;
}

function podSpecOf(object) {
  if (["Deployment", "StatefulSet", "Job"].includes(object.kind)) {
    return object.spec && object.spec.template;
  }
  return null;
}

function isSubset(small, big) {
  return Object.entries(small || {}).every(([key, value]) => big && big[key] === value);
}

function checkObjects(objects, flags) {
  const where = (object) => `${object.file}: ${object.kind}/${object.metadata.name}`;
  const named = (kind) => new Map(objects.filter((o) => o.kind === kind)
                                      .map((o) => [o.metadata.name, o]));
  const claims = named("PersistentVolumeClaim");
  const accounts = named("ServiceAccount");
  const roles = named("Role");
  const services = named("Service");
  const workloads = objects.filter(podSpecOf);

  for (const object of objects) {
    if (object.kind !== "Namespace" && object.metadata.namespace !== "prolong") {
      problem(`${where(object)}: metadata.namespace is not prolong`);
    }
  }

  // Every host:port flag that names a Service of the namespace.
  const addressFlags = [];
  for (const workload of workloads) {
    const at = where(workload);
    const template = podSpecOf(workload);
    const pod = template.spec || {};
    if (workload.kind !== "Job" &&
        !isSubset(workload.spec.selector && workload.spec.selector.matchLabels,
                  template.metadata && template.metadata.labels)) {
      problem(`${at}: spec.selector.matchLabels do not match the pod template's labels`);
    }
    if (pod.serviceAccountName !== undefined && !accounts.has(pod.serviceAccountName)) {
      problem(`${at}: no ServiceAccount ${pod.serviceAccountName}`);
    }
    const volumes = new Set((pod.volumes || []).map((v) => v.name));
    for (const template of (workload.spec.volumeClaimTemplates || [])) {
      volumes.add(template.metadata.name);
    }
    for (const volume of pod.volumes || []) {
      const claim = volume.persistentVolumeClaim;
      if (claim && !claims.has(claim.claimName)) {
        problem(`${at}: volume ${volume.name} claims ${claim.claimName}, which no manifest makes`);
      }
    }
    const annotations = (template.metadata && template.metadata.annotations) || {};
    for (const container of pod.containers || []) {
      const cat = `${at} container ${container.name}`;
      for (const mount of container.volumeMounts || []) {
        if (!volumes.has(mount.name)) problem(`${cat}: mounts ${mount.name}, not a volume`);
      }
      const argv = [...(container.command || []), ...(container.args || [])];
      const binary = argv.length > 0 && argv[0].match(/^\/opt\/prolong\/bin\/([a-z]+)$/);
      if (!binary) {
        problem(`${cat}: does not run a binary from /opt/prolong/bin`);
        continue;
      }
      const defined = new Set([...(flags[binary[1]] || []), ...(flags["*"] || [])]);
      if (!flags[binary[1]]) problem(`${cat}: no sources given for ${binary[1]}'s flags`);
      const values = {};
      for (const arg of argv.slice(1)) {
        const flag = arg.match(/^(--[a-z0-9-]+)(=(.*))?$/);
        if (!flag) continue;
        if (!defined.has(flag[1])) problem(`${cat}: ${binary[1]} has no flag ${flag[1]}`);
        values[flag[1]] = flag[3];
        const address = (flag[3] || "").match(/^([a-z0-9-]+)\.prolong\.svc:([0-9]+)$/);
        if (address) addressFlags.push({ at: cat, flag: flag[1], name: address[1],
                                         port: Number(address[2]) });
      }
      const ports = new Map((container.ports || []).map((p) => [p.name, p.containerPort]));
      const metrics = (values["--metrics-address"] || "").match(/:([0-9]+)$/);
      if (annotations["prometheus.io/scrape"] === "true") {
        const port = Number(annotations["prometheus.io/port"]);
        if (!metrics || Number(metrics[1]) !== port || ports.get("metrics") !== port) {
          problem(`${cat}: prometheus.io/port ${port} is not where --metrics-address listens ` +
                  `(${values["--metrics-address"]}) or not its metrics port`);
        }
      }
      const grpc = (values["--address"] || "").match(/:([0-9]+)$/);
      if (grpc && ports.get("grpc") !== Number(grpc[1])) {
        problem(`${cat}: port grpc is not --address's ${grpc[1]}`);
      }
      for (const probe of [container.readinessProbe, container.livenessProbe]) {
        if (probe && probe.grpc && (!grpc || probe.grpc.port !== Number(grpc[1]))) {
          problem(`${cat}: a gRPC probe's port is not --address's`);
        }
      }
    }
  }

  for (const service of services.values()) {
    const at = where(service);
    const selected = workloads.filter(
        (w) => isSubset(service.spec.selector, podSpecOf(w).metadata.labels));
    if (selected.length === 0) {
      problem(`${at}: selects no workload`);
      continue;
    }
    for (const port of service.spec.ports || []) {
      const target = port.targetPort === undefined ? port.port : port.targetPort;
      const found = selected.some((w) => (podSpecOf(w).spec.containers || []).some(
          (c) => (c.ports || []).some((p) => p.name === target || p.containerPort === target)));
      if (!found) problem(`${at}: port ${port.name} targets ${target}, which no pod exposes`);
    }
  }
  for (const statefulSet of objects.filter((o) => o.kind === "StatefulSet")) {
    const governing = services.get(statefulSet.spec.serviceName);
    if (!governing || governing.spec.clusterIP !== "None") {
      problem(`${where(statefulSet)}: serviceName is not a headless Service here`);
    }
  }
  for (const { at, flag, name, port } of addressFlags) {
    const service = services.get(name);
    if (!service) {
      problem(`${at}: ${flag} names ${name}.prolong.svc, not a Service here`);
    } else if (!(service.spec.ports || []).some((p) => p.port === port && p.name === "grpc")) {
      problem(`${at}: ${flag} uses port ${port}, not the gRPC port of Service ${name}`);
    }
  }
  for (const binding of objects.filter((o) => o.kind === "RoleBinding")) {
    if (binding.roleRef.kind !== "Role" || !roles.has(binding.roleRef.name)) {
      problem(`${where(binding)}: roleRef names no Role here`);
    }
    for (const subject of binding.subjects || []) {
      if (subject.kind !== "ServiceAccount" || !accounts.has(subject.name) ||
          subject.namespace !== "prolong") {
        problem(`${where(binding)}: subject ${subject.name} is not a ServiceAccount here`);
      }
    }
  }
}

function main() {
  const [dir, ...sources] = process.argv.slice(2);
  if (!dir || sources.length === 0) {
    console.error("usage: check_manifests.js DIR BINARY=SOURCE...");
    return 2;
  }
  const listed = checkKustomization(dir);
  const examples = fs.readdirSync(dir).filter((name) => /\.example\.ya?ml$/.test(name));
  const objects = [...listed, ...examples].filter((name) => fs.existsSync(path.join(dir, name)))
      .flatMap((name) => readObjects(path.join(dir, name)));
  checkObjects(objects, definedFlags(sources));
  for (const text of problems) console.error(text);
  if (problems.length > 0) return 1;
  console.log(`${dir}: ${objects.length} objects agree with one another and with the binaries`);
  return 0;
}

process.exit(main());
