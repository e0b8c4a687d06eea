#!/bin/sh
# Write the example's env files with one fresh random database password, unless
# they exist. They are git-ignored: secrets never live in the repository.
set -eu
cd "$(dirname "$0")"
[ -f db.env ] && [ -f backend.env ] && exit 0
umask 077
password=$(od -An -N18 -tx1 /dev/urandom | tr -d ' \n')
printf 'POSTGRES_USER=app\nPOSTGRES_PASSWORD=%s\n' "$password" > db.env
printf 'SPRING_DATASOURCE_URL=jdbc:postgresql://db:5432/app\nSPRING_DATASOURCE_USERNAME=app\nSPRING_DATASOURCE_PASSWORD=%s\n' \
  "$password" > backend.env
echo "wrote examples/db.env and examples/backend.env"
