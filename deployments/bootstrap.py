"""Bring a Prefect server to what prefect.yaml needs: work pools, blocks and deployments."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from deployments.blocks import BlockAction, apply_block, block_settings, describe
from tasks.guards.operator_limits import OPEN_JOB_VARIABLES

ROOT = Path(__file__).resolve().parents[1]
PREFECT_YAML = ROOT / "prefect.yaml"
#: Each work pool's fixed environment: where the operator's limits live.
WORK_POOLS_YAML = ROOT / "deployments" / "work_pools.yaml"
#: The `prefect` command of this environment.
PREFECT = Path(sys.executable).parent / "prefect"
#: Each environment's pool runs one flow run at a time: with the deployments' own limit, two
#: runs never work on one environment's bucket at once.
POOL_CONCURRENCY_LIMIT = 1
#: The fleet's pools take several flow runs at once: children of different buckets run side by
#: side (each executing run holds its bucket's lock, and each worker's `--limit 1` bounds its
#: share), and fleet runs only wait on their children (the fleet deployment's own limit keeps
#: one run of it at a time).
POOL_CONCURRENCY_LIMITS: dict[str, int | None] = {
    "s3-housekeeping-fleet": None,
    "s3-housekeeping-fleet-control": None,
}


def client_env(api_url: str, home: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of the Prefect commands and workers that talk to this server."""
    return {
        **(os.environ if base is None else base),
        "PREFECT_API_URL": api_url,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PWD": str(ROOT),
    }


def prefect(*args: str, env: Mapping[str, str], timeout_s: float = 300) -> str:
    """Run a `prefect` command from the project's root; its output, or an error with its tail."""
    completed = subprocess.run(  # noqa: S603 - our own fixed command lines
        [str(PREFECT), *args],
        env=dict(env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if completed.returncode != 0:
        tail = (completed.stdout + completed.stderr)[-3000:]
        raise RuntimeError(f"`prefect {' '.join(args)}` failed ({completed.returncode}):\n{tail}")
    return completed.stdout


def deployment_specs(path: Path = PREFECT_YAML) -> list[dict[str, Any]]:
    """The deployments of prefect.yaml, anchors resolved."""
    specs: list[dict[str, Any]] = yaml.safe_load(path.read_text())["deployments"]
    return specs


def work_pool_names(specs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Each work pool the deployments name, once, in file order."""
    return list(dict.fromkeys(spec["work_pool"]["name"] for spec in specs))


def credentials_blocks(specs: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Block name -> environment, for each credentials block the deployments name, their
    parameters or (a fleet's) the targets of their targets file.

    Raises:
        ConfigError: a fleet's targets file is missing or invalid (every problem, with its line).
    """
    from tasks.fleet.targets import load_targets

    blocks: dict[str, str] = {}
    for spec in specs:
        parameters = spec.get("parameters", {})
        named = [parameters]
        if parameters.get("targets"):
            named += [t.parameters for t in load_targets(ROOT / parameters["targets"]).targets]
        for settings in named:
            name = settings.get("aws_credentials_block")
            if name:
                blocks.setdefault(name, settings.get("environment", "dev"))
    return blocks


def pool_environments(path: Path = WORK_POOLS_YAML) -> dict[str, dict[str, str]]:
    """Each work pool's fixed environment (deployments/work_pools.yaml)."""
    pools = yaml.safe_load(path.read_text())
    return {name: {key: str(value) for key, value in env.items()} for name, env in pools.items()}


def locked_template(env: Mapping[str, str]) -> dict[str, Any]:
    """A process pool's base job template whose flow runs get exactly `env`, started as the
    operator set them: no job variable is left to a deployment or a run but the open ones
    (tasks/guards/operator_limits.py; none as shipped).

    Every other variable of Prefect's own template is fixed: its value is written into the job
    configuration (`env`, and Prefect's default for the others: the worker's own command, a
    fresh working directory), and the variables schema neither lists it nor accepts it, so the
    server refuses a deployment or a custom run that sets it. A variable Prefect adds later is
    fixed the same way.
    """
    from prefect.utilities.templating import apply_values, find_placeholders
    from prefect.workers.process import ProcessWorker

    template = ProcessWorker.get_default_base_job_template()
    schema = template["variables"]
    properties: dict[str, Any] = schema["properties"]
    closed = set(properties) - OPEN_JOB_VARIABLES
    values = {name: properties[name]["default"] for name in closed if "default" in properties[name]}
    values["env"] = dict(env)
    job = template["job_configuration"]
    fixed = {
        key for key, value in job.items() if {p.name for p in find_placeholders(value)} & closed
    }
    # A value without a default is left out: the worker's own default applies (no labels).
    template["job_configuration"] = {
        **{key: value for key, value in job.items() if key not in fixed},
        **apply_values({key: job[key] for key in fixed}, values),
    }
    schema["properties"] = {name: properties[name] for name in properties if name not in closed}
    if "required" in schema:
        schema["required"] = [name for name in schema["required"] if name not in closed]
    schema["additionalProperties"] = False
    return template


def ensure_work_pools(
    names: Sequence[str], environments: Mapping[str, Mapping[str, str]]
) -> dict[str, str]:
    """Create the `process` pools that are missing (one flow run at a time but for the fleet's),
    and bring each pool's fixed environment to deployments/work_pools.yaml's (its operator's
    limits included).

    Raises:
        ValueError: a pool the deployments name has no entry in work_pools.yaml.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
    from prefect.exceptions import ObjectAlreadyExists

    missing = sorted(set(names) - set(environments))
    if missing:
        raise ValueError(f"no entry in deployments/work_pools.yaml for {', '.join(missing)}")
    actions: dict[str, str] = {}
    with get_client(sync_client=True) as client:
        for name in names:
            template = locked_template(environments[name])
            try:
                client.create_work_pool(
                    WorkPoolCreate(
                        name=name,
                        type="process",
                        base_job_template=template,
                        concurrency_limit=POOL_CONCURRENCY_LIMITS.get(name, POOL_CONCURRENCY_LIMIT),
                    )
                )
                actions[name] = "created"
            except ObjectAlreadyExists:
                if client.read_work_pool(name).base_job_template == template:
                    actions[name] = "exists"
                else:
                    client.update_work_pool(name, WorkPoolUpdate(base_job_template=template))
                    actions[name] = "updated"
    return actions


def apply_credentials_blocks(
    blocks: Mapping[str, str], environ: Mapping[str, str], overwrite: bool
) -> dict[str, BlockAction]:
    """Create or update each named block from the environment variables (see blocks.py)."""
    return {
        name: apply_block(name, block_settings(environment, environ), overwrite)
        for name, environment in blocks.items()
    }


def register_block_types(env: Mapping[str, str]) -> None:
    """Register prefect-aws's block types (the bundled catalog's AWS Credentials is old)."""
    prefect("block", "register", "-m", "prefect_aws", env=env)


def deploy_all(env: Mapping[str, str]) -> None:
    """Apply prefect.yaml: create or update every deployment it defines.

    Its pull step names "{{ $PWD }}", which `prefect deploy` resolves: the project's root here.
    """
    prefect("--no-prompt", "deploy", "--all", env={**env, "PWD": str(ROOT)})


@dataclass(frozen=True)
class Bootstrapped:
    """What bootstrap did, for a person to read."""

    pools: dict[str, str]
    blocks: dict[str, BlockAction]
    block_descriptions: dict[str, str]


def bootstrap(
    env: Mapping[str, str], block_environ: Mapping[str, str], overwrite_blocks: bool
) -> Bootstrapped:
    """Pools, block types, credentials blocks and deployments, in that order (each idempotent).

    Args:
        env: the environment of the `prefect` commands (PREFECT_API_URL names the server);
            this process must already point at the same server.
        block_environ: where the credentials blocks' settings come from.
        overwrite_blocks: bring existing blocks to these settings (a local server) or keep them
            (a team's server).
    """
    specs = deployment_specs()
    # Before any change to the server: a fleet's invalid targets file stops it here.
    blocks = credentials_blocks(specs)
    pools = ensure_work_pools(work_pool_names(specs), pool_environments())
    register_block_types(env)
    actions = apply_credentials_blocks(blocks, block_environ, overwrite_blocks)
    descriptions = {
        name: describe(block_settings(environment, block_environ))
        for name, environment in blocks.items()
    }
    deploy_all(env)
    return Bootstrapped(pools=pools, blocks=actions, block_descriptions=descriptions)
