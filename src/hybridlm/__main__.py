from hybridlm.cli import app

app(prog_name="hybridlm")
