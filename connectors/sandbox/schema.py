"""The demo world's fixed schema (SPEC section 8): names the example config relies on."""

from __future__ import annotations

from typing import Final

# -- Jira ---------------------------------------------------------------------------------

#: Custom field holding a Salesforce Account Id (the [link] rule of the demo config).
JIRA_ACCOUNT_FIELD_NAME: Final = "Salesforce Account"
JIRA_ACCOUNT_FIELD_ID: Final = "customfield_10100"
#: Story points, a number field.
JIRA_STORY_POINTS_FIELD_NAME: Final = "Story Points"
JIRA_STORY_POINTS_FIELD_ID: Final = "customfield_10016"
#: Two custom fields sharing one display name: a config naming it must fail clearly.
JIRA_DUPLICATE_FIELD_NAME: Final = "Customer Tier"
JIRA_DUPLICATE_FIELD_IDS: Final = ("customfield_10200", "customfield_10201")
#: Where our satisfaction flag may be written as a field (select-like text).
JIRA_FLAG_FIELD_NAME: Final = "Customer Satisfaction"
JIRA_FLAG_FIELD_ID: Final = "customfield_10300"
#: Epic link (company-managed projects on Server/DC and older Cloud sites).
JIRA_EPIC_LINK_FIELD_ID: Final = "customfield_10014"
JIRA_EPIC_LINK_FIELD_NAME: Final = "Epic Link"
#: Team-managed projects' story points (Cloud only; Jira Software's own type).
JIRA_STORY_POINT_ESTIMATE_FIELD_ID: Final = "customfield_10035"
JIRA_STORY_POINT_ESTIMATE_FIELD_NAME: Final = "Story point estimate"

#: Workflow statuses: name -> (status id, statusCategory key).
JIRA_STATUSES: Final = {
    "To Do": ("10000", "new"),
    "In Progress": ("3", "indeterminate"),
    "Blocked": ("10001", "indeterminate"),
    "Done": ("10002", "done"),
}
#: Transitions available from every status: transition id -> target status.
JIRA_TRANSITIONS: Final = {"11": "To Do", "21": "In Progress", "31": "Blocked", "41": "Done"}

JIRA_ISSUE_TYPES: Final = {
    "Epic": "10000",
    "Story": "10001",
    "Task": "10002",
    "Bug": "10003",
    "Sub-task": "10004",
}
#: Issue types that are sub-tasks (their parent is a standard issue, not an epic).
JIRA_SUBTASK_TYPES: Final = frozenset({"Sub-task"})

# -- Salesforce ---------------------------------------------------------------------------

SF_ACCOUNT_SEGMENT_FIELD: Final = "Segment__c"
SF_ACCOUNT_CSAT_FIELD: Final = "CSAT__c"
#: A CRM field holding the Jira project key (the second [link] rule).
SF_ACCOUNT_PROJECT_KEY_FIELD: Final = "Jira_Project_Key__c"

SF_SURVEY_OBJECT: Final = "Survey_Response__c"
SF_REPORT_OBJECT: Final = "Jira_Project_Status__c"
SF_REPORT_EXTERNAL_ID: Final = "Jira_Sync_Key__c"

SEGMENTS: Final = ("Enterprise", "Mid-Market", "SMB", "Public Sector", "大客户")

SF_API_VERSIONS: Final = ("57.0", "58.0", "59.0", "60.0", "61.0", "62.0")
