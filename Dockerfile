# The incident-runbook image: `runbook serve` (deploy/base/deployment.yaml) and `runbook run`
# (deploy/base/cronjob.yaml). The same `pip install -c constraints.txt` CI runs, every version
# pinned, plus the s3 extra (boto3) for evidence in a bucket.
#
#   docker build -t registry.example.com/platform/incident-runbook:0.1.0 .
#
# Nothing secret is built in: the database (a libpq service file), the Alertmanager token, the
# signing key and S3 credentials (or IRSA) come from Secrets at run time (docs/deploy.md). The
# container runs as uid 10001 on a read-only root filesystem: everything it writes goes under /tmp
# (an emptyDir), the evidence to s3:// (or a mounted volume).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# kubectl is not needed: the notebooks speak to the API server through the Python client
WORKDIR /opt/incident-runbook
COPY pyproject.toml constraints.txt README.md ./
COPY incidentlib/ incidentlib/
COPY notebooks/ notebooks/
RUN pip install -c constraints.txt '.[s3]' \
    && python -m ipykernel install --prefix /usr/local --name python3 \
    && python -m compileall -q /usr/local/lib/python3.11/site-packages \
    && rm -rf incidentlib pyproject.toml

RUN groupadd --gid 10001 runbook \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp/home \
        --shell /usr/sbin/nologin runbook

# writable places: all under /tmp (the Deployment mounts an emptyDir there)
ENV HOME=/tmp/home \
    TMPDIR=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib \
    JUPYTER_RUNTIME_DIR=/tmp/jupyter \
    IPYTHONDIR=/tmp/ipython \
    RUNBOOK_NOTEBOOKS=/opt/incident-runbook/notebooks \
    RUNBOOK_OUTPUTS=/tmp/outputs

USER 10001:10001
EXPOSE 9095
ENTRYPOINT ["runbook"]
CMD ["--help"]
