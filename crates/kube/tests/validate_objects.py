"""Validates Kubernetes objects written by the trainctl-kube tests.

Built-in kinds go through kubernetes-validate in strict mode (unknown fields are errors)
for every --kubernetes-version. Kinds of other projects go through the openAPIV3Schema of
their CRD in --crds, made strict the same way (an object schema with properties and no
x-kubernetes-preserve-unknown-fields rejects other fields, as a server with strict field
validation does); --crds may be given more than once. The TrainingJob kind goes through --trainingjob-schema. An object of a
kind nobody has a schema for fails: every object must be checked by something.
"""

import argparse
import copy
import functools
import glob
import json
import os
import sys

import jsonschema
import kubernetes_validate
import kubernetes_validate.utils as kv_utils
import yaml


# libyaml's loader where PyYAML has it: the CRD files are large.
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# kubernetes-validate reads its schema files again for every object; read each once.
kv_utils.schema_contents = functools.lru_cache(maxsize=None)(kv_utils.schema_contents)


def strict(schema):
    """The schema with additionalProperties: false wherever the server would prune."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if (
                node.get("type") == "object"
                and "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


def crd_schemas(directory):
    """(apiVersion, kind) -> strict schema, from every CRD file in the directory."""
    out = {}
    for path in sorted(glob.glob(os.path.join(directory, "*.yaml"))):
        with open(path) as f:
            for doc in yaml.load_all(f, Loader=LOADER):
                if not doc or doc.get("kind") != "CustomResourceDefinition":
                    continue
                spec = doc["spec"]
                for version in spec["versions"]:
                    schema = version["schema"]["openAPIV3Schema"]
                    key = (spec["group"] + "/" + version["name"], spec["names"]["kind"])
                    out[key] = checker(strict(schema))
    return out


def checker(schema):
    """A validator for a schema, checked once."""
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--crds", action="append", required=True)
    parser.add_argument("--trainingjob-schema", required=True)
    parser.add_argument("--kubernetes-version", action="append", required=True)
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()

    schemas = {}
    for directory in args.crds:
        schemas.update(crd_schemas(directory))
    with open(args.trainingjob_schema) as f:
        schemas[("trainctl.dev/v1alpha1", "TrainingJob")] = checker(json.load(f))

    failures = 0
    checked = 0
    seen = set()
    for path in args.files:
        with open(path) as f:
            objects = [o for o in yaml.load_all(f, Loader=LOADER) if o]
        for obj in objects:
            # Many renders share objects; each distinct object is checked once.
            text = json.dumps(obj, sort_keys=True)
            if text in seen:
                continue
            seen.add(text)
            name = "%s %s/%s" % (path, obj.get("kind"), obj.get("metadata", {}).get("name"))
            key = (obj.get("apiVersion"), obj.get("kind"))
            try:
                if key in schemas:
                    schemas[key].validate(obj)
                    print("ok (CRD schema) %s" % name)
                else:
                    for version in args.kubernetes_version:
                        used = kubernetes_validate.validate(obj, version, strict=True)
                        print("ok (kubernetes %s strict) %s" % (used, name))
                checked += 1
            except kv_utils.SchemaNotFoundError as e:
                failures += 1
                print("FAIL %s: no schema: %s" % (name, e.message))
            except jsonschema.ValidationError as e:
                failures += 1
                where = ".".join(str(p) for p in e.absolute_path)
                print("FAIL %s: %s: %s" % (name, where, e.message))
    print("%d objects checked, %d failures" % (checked, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
