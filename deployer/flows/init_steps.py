"""What `deployer init` prints after it wrote the files: what the apps need, then the next
steps, for the backend and front end it was asked for."""

from __future__ import annotations

NEXT_STEPS_CI = """
CI/CD (docs/ci-cd.md):
  1. Set the hosts in deployer.toml's [environments.staging] and [environments.production],
     and [registry] url to ghcr.io/<the repository's owner, lowercase>.
  2. Create the GitHub environments staging and production (production: required reviewers;
     both: deployment branches limited to main), with the secrets DB_ENV and BACKEND_ENV
     (the env files' text), STAGING_SSH_KEY (a repository secret) and PRODUCTION_SSH_KEY
     (an environment secret of production, never a repository secret), and the repository
     variable DEPLOY_KNOWN_HOSTS (the workflows install this deployer's version;
     DEPLOYER_SPEC, if set, names another).
  3. Require the CI checks backend, frontend and images on main (branch protection).
"""

SPRING = """\
  - The backend answers its health path: add Spring Boot Actuator
    (org.springframework.boot:spring-boot-starter-actuator) for /actuator/health.
  - The database password arrives as a file under /run/secrets (services.backend.secrets):
    add spring.config.import=optional:configtree:/run/secrets/ to application.properties.
"""

GENERIC = """\
  - The backend's image is yours: backend/Dockerfile{missing}. It listens on PORT (8080)
    on all addresses, answers /health with 2xx once it can serve, and exits gracefully
    on SIGTERM.
  - The database is at DB_HOST:DB_PORT (db:5432) as DB_USER; the password arrives as the
    file /run/secrets/DB_PASSWORD, named by DB_PASSWORD_FILE: read it at start.
"""

NEXTJS = """\
  - The front end answers its health path, services.frontend.health (/healthz: a Next.js
    route that returns 200); its image's HEALTHCHECK probes the same path.
"""

STEPS = """\
Next steps:
  1. Keep db.env and backend.env out of git (they hold the database password).
  2. Check the config, with no engine:  deployer config check
     (ports, health paths and routes are the ones to read in deployer.toml)
  3. Build the images:        deployer build v1{jar}
  4. Start the edge and db:   deployer up
  5. Release:                 deployer release v1
  6. Roll back at any time:   deployer rollback
"""

JAR = "\n     (or in CI: build the jar to backend/build/libs/ first; the Dockerfile then skips the JDK)"


def next_steps(*, backend: str = "spring", frontend: str = "nextjs", backend_dockerfile: bool = True) -> str:
    needs = SPRING if backend == "spring" else GENERIC.format(missing="" if backend_dockerfile else " (none yet)")
    if frontend == "nextjs":
        needs += NEXTJS
    return "\nWhat the apps need:\n" + needs + STEPS.format(jar=JAR if backend == "spring" else "")
