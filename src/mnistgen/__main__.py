from mnistgen.cli import app

app(prog_name="mnistgen")
