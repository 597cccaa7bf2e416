from infra.cli import run

run()
