from infra.cli.main import run

run()
