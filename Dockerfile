# The image a Kubernetes or ECS work pool runs s3-housekeeping's flow runs in: Prefect's own image
# at the Prefect version uv.lock pins, with this project's wheel installed at uv.lock's versions.
# docs/guides/install.md shows how to build it, and prefect.yaml's build and push steps for it.
# Nothing secret goes in: credentials come at run time (a task role, an AwsCredentials block).
ARG PREFECT_IMAGE=prefecthq/prefect:3.9.1-python3.12

# Build stage: the wheel, and uv.lock's versions of what it needs, as pip constraints.
FROM ${PREFECT_IMAGE} AS build
RUN python -m pip install --no-cache-dir --disable-pip-version-check "uv>=0.9,<1"
WORKDIR /src
COPY pyproject.toml uv.lock README.md LICENSE ./
COPY flows/ flows/
COPY tasks/ tasks/
COPY deployments/ deployments/
COPY devtools/ devtools/
RUN uv build --wheel --out-dir /dist \
 && uv export --frozen --no-default-groups --extra dask --extra parquet --no-emit-project \
        --no-hashes --output-file /dist/constraints.txt

# Run stage: Prefect's image, the wheel in its Python (beside Prefect, as `prefect flow-run
# execute` runs it). Extras: dask (a run's dask_address; the same image serves the cluster's
# workers) and parquet (S3 Inventories in Parquet). A run that uses either fails without it.
# Not local-aws: moto is a test server.
FROM ${PREFECT_IMAGE}
COPY --from=build /dist/ /tmp/dist/
RUN python -m pip install --no-cache-dir --disable-pip-version-check \
        --constraint /tmp/dist/constraints.txt "$(ls /tmp/dist/*.whl)[dask,parquet]" \
 && rm -rf /tmp/dist
# The deployments name their files relative to the run's directory, as in a checkout
# (flows/s3_housekeeping.py, deployments/logging.yml, deployments/targets.example.yaml): this
# one shows the installed packages under those names; a run writes its plans here too unless
# MANIFEST_LOCATION says elsewhere.
RUN useradd --create-home --uid 10001 --user-group s3-housekeeping \
 && mkdir -p /opt/prefect/s3-housekeeping \
 && site="$(python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
 && ln -s "$site/flows" "$site/deployments" /opt/prefect/s3-housekeeping/ \
 && chown s3-housekeeping:s3-housekeeping /opt/prefect/s3-housekeeping
WORKDIR /opt/prefect/s3-housekeeping
USER 10001
