"""sf-intuser: move Salesforce integration users onto the free Salesforce Integration license."""

__version__ = "0.1.0"
