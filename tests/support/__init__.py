"""Fault tools: what tests put between the functions and the systems they call to make those fail
(aws_proxy, faulty_dynamodb, tcp_proxy), read back what was stored (stored_state), or drive the API
handler from HTTP tools (lambda_wsgi). Everything the system runs on is the local stack's
(local_stack): Redis, moto, the coins API, events, Lambda contexts, the functions' environment.
"""
