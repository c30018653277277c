"""Column names of the competition files: the target, the Id, numeric and categorical features."""

from __future__ import annotations

ID = "Id"

TARGET = "SalePrice"

# The 36 features that data_description.txt defines as numbers (MSSubClass is a
# numeric code; the features config can still treat it as a category).
NUMERIC_FEATURES: tuple[str, ...] = tuple(
    """
    MSSubClass LotFrontage LotArea OverallQual OverallCond YearBuilt YearRemodAdd
    MasVnrArea BsmtFinSF1 BsmtFinSF2 BsmtUnfSF TotalBsmtSF 1stFlrSF 2ndFlrSF
    LowQualFinSF GrLivArea BsmtFullBath BsmtHalfBath FullBath HalfBath BedroomAbvGr
    KitchenAbvGr TotRmsAbvGrd Fireplaces GarageYrBlt GarageCars GarageArea WoodDeckSF
    OpenPorchSF EnclosedPorch 3SsnPorch ScreenPorch PoolArea MiscVal MoSold YrSold
""".split()
)

CATEGORICAL_FEATURES: tuple[str, ...] = tuple(
    """
    MSZoning Street Alley LotShape LandContour Utilities LotConfig LandSlope
    Neighborhood Condition1 Condition2 BldgType HouseStyle RoofStyle RoofMatl
    Exterior1st Exterior2nd MasVnrType ExterQual ExterCond Foundation BsmtQual BsmtCond
    BsmtExposure BsmtFinType1 BsmtFinType2 Heating HeatingQC CentralAir Electrical
    KitchenQual Functional FireplaceQu GarageType GarageFinish GarageQual GarageCond
    PavedDrive PoolQC Fence MiscFeature SaleType SaleCondition
""".split()
)

FEATURES: tuple[str, ...] = NUMERIC_FEATURES + CATEGORICAL_FEATURES

# Numbers that name a class (data_description.txt): new values in test are new categories.
CODE_FEATURES: tuple[str, ...] = ("MSSubClass",)
