"""The scan, stage by stage: walk the folder, plan, ingest photos into the index, group faces into people.

Data flows one way: files (``walk``, ``plan``) -> photos and faces (``ingest``) -> people
(``people``, ``recognition``); ``scan`` runs the stages in order. Outputs are written elsewhere
(``facecluster.outputs``).
"""
