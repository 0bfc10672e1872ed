"""The local web dashboard (`farensectl dashboard`): a reader of the same files as farensectl.

It adds no state: pages are static files, the API reads status.json, the job records and the run
folders (data.py), and the actions drop the same control requests farensectl drops (actions.py).
The daemon never imports it.
"""
