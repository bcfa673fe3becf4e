"""`vamp`, the command line of vamp-serverless: Vamp's CLI (REFERENCE.md section 6) over the REST API.

client.py talks HTTP (one Api per invocation), config.py resolves host, token and namespace,
output.py prints tables / json / yaml / names, main.py holds the click group and Vamp's commands.
"""

__version__ = "0.1.0"
