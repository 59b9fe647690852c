#!/usr/bin/env bash
# MariaDB for the MySQL source tests: installed from Debian's packages if missing, started if
# down, root@127.0.0.1 allowed without a password (a test server on the loopback only).
set -euo pipefail
ping() { mysqladmin --protocol=tcp -h 127.0.0.1 -P 3306 -uroot ping >/dev/null 2>&1; }
if ping; then exit 0; fi
if ! command -v mariadbd >/dev/null 2>&1 && ! command -v mysqld >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq mariadb-server >/dev/null
fi
if ! mysqladmin -uroot ping >/dev/null 2>&1; then
  (service mariadb start || service mysql start) >/dev/null 2>&1 || {
    install -d -o mysql -g mysql /run/mysqld
    (mysqld_safe --bind-address=127.0.0.1 >/dev/null 2>&1 &)
  }
  for _ in $(seq 1 60); do mysqladmin -uroot ping >/dev/null 2>&1 && break; sleep 1; done
fi
# Over the socket as the system's root, then for TCP from the loopback.
mysql -uroot -e "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY ''; GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION; FLUSH PRIVILEGES;"
for _ in $(seq 1 30); do ping && exit 0; sleep 1; done
echo "MariaDB does not answer on 127.0.0.1:3306" >&2
exit 1
